"""The sandbox kernel: a persistent Python REPL speaking framed JSON over two fds.

Plain stdlib Python, no rlmrt imports: every out-of-process backend runs this file as
``python -I -S kernel.py CONFIG_JSON`` (or, in a pod, receives it on stdin first: see
`rlmrt.sandbox._kube_pod`) with its protocol on stdin/stdout. It is also
importable on the host, and it is where the REPL is written, once: `Repl` (compiling a
cell with last-expression display, error formatting, the helpers) is what the kernel
runs and what the in-process sandbox reuses with RestrictedPython's policy as its
compile hook; `HOST_FUNCTIONS` is the one table of the functions code may call on the
host, from which the helpers are built, the host dispatches (`rlmrt.sandbox.base.call_host`)
and `HostBridge` is typed; final answers render one way (`render_value`, `render_final`).
The wasm sandbox runs the same file inside Pyodide through `serve_embedded`, with the
frames and the timer carried by its Deno runner instead of fds and itimers.

Frames are a 4-byte big-endian length then a UTF-8 JSON object.

host -> kernel: ``execute`` {id, code}; ``set`` {id, name, value}; ``get`` {id, name};
``list`` {id}; ``load_context`` {id, name, path} (a file: .txt, .bin, .json, .bjson)
or {id, name, value, bytes} (the value itself, as ``set`` sends it: for a kernel that
cannot read the host's files); ``result`` {id, ok, value | error} (the answer to a
kernel ``call``); ``shutdown``.

kernel -> host: ``ready`` {pid} once; ``call`` {id, fn, args} while code runs (the
kernel then reads frames until the ``result`` of that id); ``done`` {id, stdout,
stderr, error, final, final_set, display, duration_s}; ``value`` {id, value};
``error`` {id, error}.

At start the kernel moves the protocol to duplicated descriptors and points fds 0/1/2
at /dev/null and two capture files, so nothing user code writes (print, os.write,
child processes) can reach the channel.
"""

from __future__ import annotations

import _ast
import builtins
import keyword
import os
import select
import struct
import sys
import time
import types

TYPE_CHECKING = False  # `typing` (and the `re` it imports) would cost ~5 ms of each start
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from typing import Any
else:
    import _signal as signal  # signal.py would import enum (and re): ~3 ms of each start

__all__ = [
    "BYTES_TAG",
    "HELPER_NAMES",
    "HOST_FUNCTIONS",
    "MEDIA_TAG",
    "Audio",
    "Cell",
    "HostFunction",
    "Image",
    "Media",
    "QueryFailed",
    "Repl",
    "Tools",
    "cpu_message",
    "exception_line",
    "render_final",
    "render_value",
    "timeout_message",
    "variable_name_problem",
]

_JSON_TYPES = (dict, list, tuple, int, float, bool)
_HEADER = struct.Struct(">I")
_MAX_FRAME = 256 << 20


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _DecoderSettings:
    """What the C scanner reads from a `json.JSONDecoder`: the decoder's defaults, without
    importing `json` (its decoder imports `re`, a third of the kernel's start)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {
        "-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")
    }.__getitem__  # fmt: skip


def _private_json() -> tuple[Any, Any, Any]:
    """(encode, encode_strict, decode) that user code cannot reach.

    User code could change the `json` module (`json.dumps = None`, a new
    `JSONEncoder.item_separator`) and break the channel, forcing a restart that loses
    every variable; the kernel therefore builds its own encoders and scanner from the C
    accelerators of `_json`, whose objects copy their settings at creation.
    """
    try:
        import _json
    except ImportError:  # pragma: no cover - a Python without the accelerators
        import json

        dumps, loads = json.dumps, json.loads
        return (
            lambda v: dumps(v, ensure_ascii=False, default=repr),
            lambda v: dumps(v, ensure_ascii=False),
            loads,
        )
    make_encoder, basestring = _json.make_encoder, _json.encode_basestring
    lenient = make_encoder(None, repr, basestring, None, ":", ",", False, False, True)
    # json.dumps's own separators: final answers render as users expect.
    strict = make_encoder(None, _refuse, basestring, None, ": ", ", ", False, False, True)
    scan = _json.make_scanner(_DecoderSettings())  # type: ignore[arg-type]  # duck-typed
    join = "".join

    def decode(text: str) -> Any:
        value, end = scan(text, 0)
        if end != len(text):
            raise ValueError(f"extra data after the JSON value at {end}")
        return value

    return (lambda v: join(lenient(v, 0)), lambda v: join(strict(v, 0)), decode)


_encode, _encode_strict, _decode = _private_json()

#: how a bytes value travels in JSON (a context, a variable): {BYTES_TAG: base64}
BYTES_TAG = "\x00bytes"


def pack_bytes(value: Any) -> Any:
    """`value` with every bytes/bytearray in it (at any depth of dicts, lists and
    tuples) as ``{BYTES_TAG: base64}`` and every `Media` as ``{MEDIA_TAG: ...}``: JSON
    data for the channel."""
    if isinstance(value, (bytes, bytearray)):
        import binascii

        return {BYTES_TAG: binascii.b2a_base64(value, newline=False).decode("ascii")}
    if isinstance(value, Media):
        return value.packed()
    if isinstance(value, dict):
        return {key: pack_bytes(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [pack_bytes(item) for item in value]
    return value


def unpack_bytes(value: Any) -> Any:
    """The inverse of `pack_bytes`."""
    if isinstance(value, dict):
        if len(value) == 1 and BYTES_TAG in value:
            import binascii

            return binascii.a2b_base64(value[BYTES_TAG])
        if len(value) == 1 and MEDIA_TAG in value:
            return _unpack_media(value[MEDIA_TAG])
        return {key: unpack_bytes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unpack_bytes(item) for item in value]
    return value


def _sent_value(msg: dict[str, Any]) -> Any:
    """The value a ``set`` or ``load_context`` message carries (``bytes``: packed)."""
    sent = msg.get("value")
    return unpack_bytes(sent) if msg.get("bytes") else sent


#: how an image or a recording travels in JSON: {MEDIA_TAG: {kind, format, data: base64, ...}}
MEDIA_TAG = "\x00media"


class Media:
    """The bytes of an image or a recording, with what is known of them (`info`).

    Its repr (what a REPL shows, what a prompt may quote) is metadata only, never the
    bytes. `data` is the file's bytes, `format` its lower-case format name ("png").
    """

    kind = "media"
    __slots__ = ("data", "format", "info")

    def __init__(self, data: bytes, format: str, **info: Any) -> None:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{type(self).__name__} data must be bytes, got {type(data).__name__}")
        self.data, self.format, self.info = bytes(data), str(format).lower(), info

    @property
    def size(self) -> int:
        """Bytes of `data`."""
        return len(self.data)

    def describe(self) -> str:
        return f"{self.format}, {len(self.data):,} bytes"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.data == self.data and other.format == self.format

    __hash__ = None  # type: ignore[assignment]

    def packed(self) -> dict[str, Any]:
        import binascii

        data = binascii.b2a_base64(self.data, newline=False).decode("ascii")
        return {MEDIA_TAG: {**self.info, "kind": self.kind, "format": self.format, "data": data}}


class Image(Media):
    """An image (PNG, JPEG, WebP) with `width` and `height` in pixels. `crop`, `resize`
    and `thumbnail` need Pillow where the code runs; they return new `Image`s."""

    kind = "image"
    __slots__ = ()

    @property
    def width(self) -> int | None:
        return self.info.get("width")

    @property
    def height(self) -> int | None:
        return self.info.get("height")

    def describe(self) -> str:
        return f"{self.format} {self.width}x{self.height}, {len(self.data):,} bytes"

    def crop(self, box: tuple[int, int, int, int]) -> Image:
        """The part of the image inside `box` = (left, top, right, bottom), in pixels."""
        return self._edited(lambda picture: picture.crop(tuple(box)))

    def resize(self, size: tuple[int, int]) -> Image:
        """The image scaled to `size` = (width, height), in pixels."""
        return self._edited(lambda picture: picture.resize(tuple(size)))

    def thumbnail(self, longest: int) -> Image:
        """The image scaled down (never up) so that its longer side is `longest` pixels."""

        def shrink(picture: Any) -> Any:
            picture.thumbnail((longest, longest))
            return picture

        return self._edited(shrink)

    def _edited(self, edit: Callable[[Any], Any]) -> Image:
        try:
            from io import BytesIO

            from PIL import Image as Pillow
        except ImportError:
            raise ImportError(
                "editing an Image needs Pillow, which this sandbox cannot import;"
                " its bytes are in .data"
            ) from None
        out = BytesIO()
        with Pillow.open(BytesIO(self.data)) as picture:
            picture.load()
            result = edit(picture)
            result.save(out, format=_PILLOW_FORMATS.get(self.format, self.format.upper()))
        return Image(out.getvalue(), self.format, width=result.width, height=result.height)


_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


class Audio(Media):
    """A recording (WAV, MP3) with `duration_s`; a WAV one also has `sample_rate` and
    `channels` and can be cut with `split` (the standard library's `wave`)."""

    kind = "audio"
    __slots__ = ()

    @property
    def duration_s(self) -> float | None:
        return self.info.get("duration_s")

    @property
    def sample_rate(self) -> int | None:
        return self.info.get("sample_rate")

    @property
    def channels(self) -> int | None:
        return self.info.get("channels")

    def describe(self) -> str:
        duration = self.duration_s
        length = "unknown length" if duration is None else f"{duration:.2f} s"
        return f"{self.format}, {length}, {len(self.data):,} bytes"

    def split(self, seconds: float) -> list[Audio]:
        """The recording cut into pieces of `seconds` each (the last may be shorter): WAV only."""
        if self.format != "wav":
            raise ValueError(f"split() cuts WAV recordings only, this one is {self.format}")
        if not seconds > 0:
            raise ValueError(f"split() seconds must be > 0, got {seconds!r}")
        import io
        import wave

        pieces: list[Audio] = []
        with wave.open(io.BytesIO(self.data), "rb") as source:
            params = source.getparams()
            step = max(1, int(params.framerate * seconds))
            while True:
                frames = source.readframes(step)
                if not frames:
                    break
                out = io.BytesIO()
                with wave.open(out, "wb") as piece:
                    piece.setparams(params)
                    piece.writeframes(frames)
                count = len(frames) // (params.sampwidth * params.nchannels)
                pieces.append(
                    Audio(
                        out.getvalue(),
                        "wav",
                        duration_s=count / params.framerate,
                        sample_rate=params.framerate,
                        channels=params.nchannels,
                    )
                )
        return pieces


_MEDIA_KINDS = {"image": Image, "audio": Audio}


def _unpack_media(packed: Any) -> Any:
    """A `Media.packed` dict's object (anything else: as it is, a dict of data)."""
    if not isinstance(packed, dict) or packed.get("kind") not in _MEDIA_KINDS:
        return packed
    import binascii

    info = {k: v for k, v in packed.items() if k not in ("kind", "format", "data")}
    data = binascii.a2b_base64(str(packed.get("data", "")))
    return _MEDIA_KINDS[packed["kind"]](data, str(packed.get("format", "")), **info)


_SIGNALS = (signal.SIGALRM, signal.SIGPROF)


def render_final(values: tuple[Any, ...]) -> str:
    """The answer string of `FINAL(*values)`: exactly one value (small models write
    `FINAL(61, 61, 61)`; the error says how to give several)."""
    if len(values) != 1:
        raise TypeError(
            f"FINAL() takes exactly one value, got {len(values)}; to answer with several, "
            "pass one string or list, e.g. FINAL(', '.join(str(a) for a in answers))"
        )
    return render_value(values[0])


def render_value(value: object) -> str:
    """Render `value` for `FINAL(...)` / `FINAL_VAR(...)`.

    Strings are returned as they are; dicts, lists, tuples, numbers, booleans and None
    as JSON (`ensure_ascii=False`) when they serialise; anything else as its `repr`.
    """
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, _JSON_TYPES):
        try:
            return str(_encode_strict(value))
        except (TypeError, ValueError, RecursionError):
            pass
    try:
        return repr(value)
    except ValueError:
        # ints past the str-conversion digit limit refuse repr()
        if isinstance(value, int):
            return f"<int with {value.bit_length()} bits>"
        raise


class QueryFailed(Exception):
    """The value of a failed item in `llm_query_batched` / `rlm_query_batched` results.

    Returned, not raised: one failed item does not fail the batch. Code checks for it
    with `isinstance(r, Exception)`; it carries only the error message (no traceback,
    nothing of the host).
    """


# -- the functions code may call on the host ------------------------------------------------


class HostFunction:
    """One function sandboxed code may call on the host: an entry of `HOST_FUNCTIONS`.

    `arguments` has the helper's signature and docstring: it checks what code passed and
    returns the arguments by name. That dict is what travels to the host, where the same
    `arguments` checks it again (code can forge any frame) and the bridge method of the
    same name receives it as keywords. A `batched` function returns a list whose failed
    items reach code as `QueryFailed`.
    """

    __slots__ = ("arguments", "batched", "helper", "name")

    def __init__(
        self,
        name: str,
        arguments: Callable[..., dict[str, Any]],
        *,
        batched: bool = False,
        helper: bool = True,
    ) -> None:
        # errors of a bad call name the helper: "llm_query() missing 1 required ..."
        arguments.__name__ = arguments.__qualname__ = name
        self.name, self.arguments, self.batched = name, arguments, batched
        #: False: code reaches it only through another helper (the `tools` namespace)
        self.helper = helper


def _llm_query(
    prompt: str,
    model: str | None = None,
    images: Any = None,
    audio: Any = None,
    *,
    output_type: Any = None,
) -> dict[str, Any]:
    """Ask a language model `prompt`; returns its reply. `images` / `audio`: a list of
    Image / Audio objects (or their files' bytes) the model sees with the prompt.
    `output_type` (a JSON Schema dict, or a type: int, list[str], a dataclass, a
    TypedDict, a Pydantic model) makes the reply that typed value, checked."""
    _check_str("llm_query", "prompt", prompt)
    _check_optional_str("llm_query", "model", model)
    args: dict[str, Any] = {"prompt": prompt, "model": model}
    if images is not None:
        args["images"] = _media_arguments("images", images, "image")
    if audio is not None:
        args["audio"] = _media_arguments("audio", audio, "audio")
    return _typed_arguments("llm_query", args, output_type)


def _typed_arguments(func: str, args: dict[str, Any], output_type: Any) -> dict[str, Any]:
    """`args` with `output_type` as its JSON Schema, when one is given."""
    if output_type is not None:
        args["output_type"] = type_schema(func, output_type)
    return args


def type_schema(func: str, spec: Any) -> dict[str, Any]:
    """The JSON Schema of an output type given in sandboxed code: a schema dict as it
    is, a Pydantic model's own schema, else built here from the type (plain Python:
    the sandbox may have no Pydantic). The host checks it again, and the reply."""
    if isinstance(spec, dict):
        if not all(isinstance(key, str) for key in spec):
            raise TypeError(f"{func}() output_type: a JSON Schema's keys must be str")
        return spec
    to_schema = getattr(spec, "model_json_schema", None)
    if isinstance(spec, type) and callable(to_schema):
        schema = to_schema()
        if isinstance(schema, dict):
            return schema
    try:
        return _schema_of(spec, 0)
    except TypeError as exc:
        raise TypeError(
            f"{func}() output_type must be a JSON Schema dict or a type (str, int, float,"
            f" bool, list[...], dict[str, ...], Literal[...], Optional, a dataclass, a"
            f" TypedDict, a Pydantic model), got {spec!r:.80}: {exc}"
        ) from None


_SCHEMA_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    None: "null",
}


def _schema_of(spec: Any, depth: int) -> dict[str, Any]:
    import dataclasses
    import types
    import typing

    if depth > 32:
        raise TypeError("the type nests too deep")
    if spec in _SCHEMA_SCALARS:
        return {"type": _SCHEMA_SCALARS[spec]}
    if spec in (list, tuple, set, frozenset):
        return {"type": "array"}
    if spec is dict:
        return {"type": "object"}
    if spec is typing.Any:
        return {}
    origin, args = typing.get_origin(spec), typing.get_args(spec)
    if origin in (list, tuple, set, frozenset):
        if origin is tuple and len(args) != 2 and args:
            raise TypeError("only tuple[X, ...] is supported")
        return (
            {"type": "array", "items": _schema_of(args[0], depth + 1)}
            if args
            else {"type": "array"}
        )
    if origin is dict:
        if args and args[0] is not str:
            raise TypeError("dict keys must be str")
        values = _schema_of(args[1], depth + 1) if args else {}
        return {"type": "object", "additionalProperties": values}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [_schema_of(arg, depth + 1) for arg in args]}
    if isinstance(spec, type) and (dataclasses.is_dataclass(spec) or typing.is_typeddict(spec)):
        hints = typing.get_type_hints(spec)
        if dataclasses.is_dataclass(spec):
            names = [f.name for f in dataclasses.fields(spec)]
            required = [
                f.name
                for f in dataclasses.fields(spec)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ]
        else:
            names = list(hints)
            required = [n for n in names if n in getattr(spec, "__required_keys__", ())]
        return {
            "title": spec.__name__,
            "type": "object",
            "properties": {n: _schema_of(hints[n], depth + 1) for n in names},
            "required": required,
        }
    raise TypeError(f"{spec!r:.60} has no JSON Schema here")


def _typed_result(spec: Any, value: Any, batched: bool) -> Any:
    """A typed call's result as code asked for it (`_built`); a batched call's failed
    items stay QueryFailed."""
    if batched:
        return [item if isinstance(item, QueryFailed) else _built(spec, item, 0) for item in value]
    return _built(spec, value, 0)


def _built(spec: Any, value: Any, depth: int) -> Any:
    """`value` (JSON data the host checked against `spec`'s schema) with a dataclass's
    instances where `spec` names one (at any depth of lists, dicts and Optional), a
    Pydantic model's where the sandbox has Pydantic; the rest stays JSON data."""
    import dataclasses
    import typing

    if depth > 32 or value is None or isinstance(spec, dict):
        return value
    build = getattr(spec, "model_validate", None)
    if isinstance(spec, type) and callable(build):
        return build(value)
    if isinstance(spec, type) and dataclasses.is_dataclass(spec) and isinstance(value, dict):
        hints = typing.get_type_hints(spec)
        fields = {f.name for f in dataclasses.fields(spec) if f.init}
        return spec(
            **{k: _built(hints.get(k), v, depth + 1) for k, v in value.items() if k in fields}
        )
    origin, args = typing.get_origin(spec), typing.get_args(spec)
    if origin in (list, tuple, set, frozenset) and args and isinstance(value, list):
        return [_built(args[0], item, depth + 1) for item in value]
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {key: _built(args[1], item, depth + 1) for key, item in value.items()}
    if origin is typing.Union or origin is types.UnionType:
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:  # Optional[X]; a wider union stays data: which one fits?
            return _built(options[0], value, depth + 1)
    return value


#: the formats `llm_query` sends, by kind, and how their bytes begin (`_sniffed`)
MEDIA_FORMATS = {"image": ("png", "jpeg", "webp", "gif"), "audio": ("wav", "mp3")}


def _media_arguments(arg: str, items: Any, kind: str) -> list[dict[str, str]]:
    """`items` (Media of `kind`, bytes, or this function's own output when the host
    checks a call again) as ``[{"format", "data": base64}]``."""
    if isinstance(items, (Media, bytes, bytearray, dict)):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            f"llm_query() {arg} must be a list of {kind.capitalize()} objects or bytes,"
            f" got {type(items).__name__}"
        )
    out: list[dict[str, str]] = []
    for i, item in enumerate(items):
        if isinstance(item, Media):
            if item.kind != kind:
                raise TypeError(f"llm_query() {arg}[{i}] is {item.kind}, not {kind}")
            packed = item.packed()[MEDIA_TAG]
            fmt, data = packed["format"], packed["data"]
        elif isinstance(item, (bytes, bytearray)):
            import binascii

            fmt = _sniffed(bytes(item[:16]))
            data = binascii.b2a_base64(item, newline=False).decode("ascii")
        elif isinstance(item, dict) and isinstance(item.get("data"), str):
            fmt, data = str(item.get("format")), item["data"]
        else:
            raise TypeError(
                f"llm_query() {arg}[{i}] must be an {kind.capitalize()} or bytes,"
                f" got {type(item).__name__}"
            )
        if fmt not in MEDIA_FORMATS[kind]:
            raise ValueError(
                f"llm_query() {arg}[{i}] is not a {'/'.join(MEDIA_FORMATS[kind])} file"
                f" (format: {fmt})"
            )
        out.append({"format": fmt, "data": data})
    return out


def _sniffed(head: bytes) -> str:
    """A file's format from its first bytes ("unknown" when none of `MEDIA_FORMATS`)."""
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"GIF8"):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] in (b"WEBP", b"WAVE"):
        return "webp" if head[8:12] == b"WEBP" else "wav"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return "unknown"


def _llm_query_batched(
    prompts: Any, model: str | None = None, *, output_type: Any = None
) -> dict[str, Any]:
    """Ask several prompts concurrently; replies in order (failed items: QueryFailed).
    `output_type` makes each reply that typed value, as in `llm_query`."""
    items = _check_prompts("llm_query_batched", prompts)
    _check_optional_str("llm_query_batched", "model", model)
    return _typed_arguments("llm_query_batched", {"prompts": items, "model": model}, output_type)


def _rlm_query(prompt: str, context: Any = None, *, output_type: Any = None) -> dict[str, Any]:
    """Run a recursive RLM one level deeper on `context`; returns its answer.
    `output_type` (as in `llm_query`) makes the answer that typed value, checked."""
    _check_str("rlm_query", "prompt", prompt)
    return _typed_arguments("rlm_query", {"prompt": prompt, "context": context}, output_type)


def _rlm_query_batched(
    prompts: Any, contexts: Any = None, *, output_type: Any = None
) -> dict[str, Any]:
    """Run several recursive RLMs concurrently; answers in order (or QueryFailed).
    `output_type` makes each answer that typed value, as in `rlm_query`."""
    items = _check_prompts("rlm_query_batched", prompts)
    if contexts is not None:
        if not isinstance(contexts, (list, tuple)):
            raise TypeError(
                "rlm_query_batched() contexts must be a list (one context per"
                " prompt: rlm_query_batched([p1, p2], [c1, c2])) or None"
            )
        if len(contexts) != len(items):
            raise ValueError(
                f"rlm_query_batched() got {len(items)} prompts but {len(contexts)} contexts"
            )
        contexts = list(contexts)
    return _typed_arguments(
        "rlm_query_batched", {"prompts": items, "contexts": contexts}, output_type
    )


def _context_search(query: str, max_tokens: int = 2000) -> dict[str, Any]:
    """The parts of the project's corpus that matter for `query`, within a budget."""
    _check_str("context_search", "query", query)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TypeError(
            f"context_search() max_tokens must be an int, got {type(max_tokens).__name__}"
        )
    if max_tokens < 1:
        raise ValueError(f"context_search() max_tokens must be >= 1, got {max_tokens}")
    return {"query": query, "max_tokens": max_tokens}


def _tool_call(tool: str, args: Any = None, kwargs: Any = None) -> dict[str, Any]:
    """Call the host tool `tool` with positional `args` and keyword `kwargs`."""
    _check_str("tool_call", "tool", tool)
    if args is not None and not isinstance(args, (list, tuple)):
        raise TypeError(f"tool_call() args must be a list, got {type(args).__name__}")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"tool_call() kwargs must be a dict, got {type(kwargs).__name__}")
    return {"tool": tool, "args": list(args or ()), "kwargs": dict(kwargs or {})}


def _tool_batch(calls: Any) -> dict[str, Any]:
    """Run several tool calls concurrently; results in order (failed items: QueryFailed).

    `calls` is a list of ("name", {arguments}) pairs."""
    if not isinstance(calls, (list, tuple)):
        raise TypeError(
            f"tools.batch() takes a list of (name, arguments) pairs, got {type(calls).__name__}"
            " (e.g. tools.batch([('add', {'a': 1, 'b': 2}), ('add', {'a': 3, 'b': 4})]))"
        )
    items = []
    for i, call in enumerate(calls):
        if (
            not isinstance(call, (list, tuple))
            or len(call) != 2
            or not isinstance(call[0], str)
            or not isinstance(call[1], dict)
        ):
            raise TypeError(
                f"tools.batch() calls[{i}] must be a (name, arguments) pair: a str and a dict,"
                f" got {call!r:.80}"
            )
        items.append([call[0], dict(call[1])])
    return {"calls": items}


def _memory_remember(text: str, tags: Any = None, pin: bool = False) -> dict[str, Any]:
    """Remember `text` in the project's memory (optional `tags`, `pin`); its id."""
    _check_str("memory.remember", "text", text)
    if tags is not None and (
        not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags)
    ):
        raise TypeError(f"memory.remember() tags must be a list of str, got {tags!r:.60}")
    if not isinstance(pin, bool):
        raise TypeError(f"memory.remember() pin must be True or False, got {pin!r:.60}")
    return {"text": text, "tags": list(tags or ()), "pin": pin}


def _memory_recall(query: str, k: int = 5) -> dict[str, Any]:
    """The `k` items of the project's memory that best match `query`."""
    _check_str("memory.recall", "query", query)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
        raise TypeError(f"memory.recall() k must be an int from 1 to 100, got {k!r:.60}")
    return {"query": query, "k": k}


def _memory_forget(item_id: str) -> dict[str, Any]:
    """Forget the memory item `item_id`; whether there was one."""
    _check_str("memory.forget", "item_id", item_id)
    return {"item_id": item_id}


def _check_str(func: str, arg: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{func}() {arg} must be a str, got {type(value).__name__}")


def _check_optional_str(func: str, arg: str, value: Any) -> None:
    if value is not None:
        _check_str(func, arg, value)


def _check_prompts(func: str, prompts: Any) -> list[str]:
    if not isinstance(prompts, (list, tuple)):
        raise TypeError(
            f"{func}() prompts must be a list of str, got {type(prompts).__name__}"
            f" (one call for many prompts: {func}(['first', 'second']))"
        )
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise TypeError(f"{func}() prompts[{i}] must be a str, got {type(prompt).__name__}")
    return list(prompts)


#: The functions code may call on the host, by name. Adding one is an entry here and a
#: method of the same name and arguments on `HostBridge` and on each bridge.
HOST_FUNCTIONS: dict[str, HostFunction] = {
    function.name: function
    for function in (
        HostFunction("llm_query", _llm_query),
        HostFunction("llm_query_batched", _llm_query_batched, batched=True),
        HostFunction("rlm_query", _rlm_query),
        HostFunction("rlm_query_batched", _rlm_query_batched, batched=True),
        HostFunction("context_search", _context_search),
        HostFunction("tool_call", _tool_call, helper=False),
        HostFunction("tool_batch", _tool_batch, batched=True, helper=False),
        HostFunction("memory_remember", _memory_remember, helper=False),
        HostFunction("memory_recall", _memory_recall, helper=False),
        HostFunction("memory_forget", _memory_forget, helper=False),
    )
}
# what every sandbox's REPL defines (the engine names them in its notes)
HELPER_NAMES = (
    *(name for name, function in HOST_FUNCTIONS.items() if function.helper),
    "tools",
    "memory",
    "FINAL",
    "FINAL_VAR",
    "SHOW_VARS",
)


def timeout_message(timeout_s: float | None) -> str:
    """The error of an execute stopped at its wall-time limit."""
    return f"TimeoutError: execution exceeded the {timeout_s:g} s time limit (timeout_s)"


def cpu_message(cpu_s: float | None) -> str:
    """The error of an execute stopped at its CPU-time limit."""
    return f"TimeoutError: execution used more than {cpu_s:g} s of CPU (cpu_s limit)"


class _Interrupt(BaseException):
    """Raised into user code by a timer; a BaseException so `except Exception` misses it."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class _Channel:
    """Blocking frame I/O on two fds; reads and writes run with the timer signals blocked
    so an interrupt can never land halfway through a frame."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.buf = bytearray()  # appended to in place: a frame of many MB stays linear

    def send(self, msg: dict[str, Any]) -> None:
        data = _encode(msg).encode("utf-8", "surrogatepass")
        frame = _HEADER.pack(len(data)) + data
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            view = memoryview(frame)
            while view:
                view = view[os.write(self.wfd, view) :]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _take(self) -> dict[str, Any] | None:
        if len(self.buf) < 4:
            return None
        (size,) = _HEADER.unpack_from(self.buf)
        if size > _MAX_FRAME:
            raise SystemExit(f"kernel: frame of {size} bytes is over the cap")
        if len(self.buf) < 4 + size:
            return None
        text = self.buf[4 : 4 + size].decode("utf-8", "surrogatepass")  # as the host encodes
        del self.buf[: 4 + size]
        msg = _decode(text)
        if not isinstance(msg, dict):
            raise SystemExit("kernel: a frame is not a JSON object")
        return msg

    def poll(self, timeout: float | None) -> dict[str, Any] | None:
        """The next frame, or None if none completed within `timeout` seconds."""
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            msg = self._take()
            while msg is None:
                ready, _, _ = select.select([self.rfd], [], [], timeout)
                if not ready:
                    return None
                chunk = os.read(self.rfd, 1 << 16)  # small: memory may be nearly exhausted
                if not chunk:
                    raise SystemExit(0)  # the host went away
                self.buf += chunk
                msg = self._take()
            return msg
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _CallbackChannel:
    """Frames through an embedding runtime's functions (the wasm runner's JavaScript):
    `write(text)` sends one frame holding `text`; `read()` returns the next frame's text,
    blocking (the runtime ends the process when the host goes away). `poll` cannot time
    out, so a timer that fires while the kernel waits for the host lands once the frame
    is in."""

    def __init__(self, read: Any, write: Any) -> None:
        self.read, self.write = read, write

    def send(self, msg: dict[str, Any]) -> None:
        self.write(_encode(msg))

    def poll(self, timeout: float | None) -> dict[str, Any] | None:
        msg = _decode(str(self.read()))
        if not isinstance(msg, dict):
            raise SystemExit("kernel: a frame is not a JSON object")
        return msg


class _Timers:
    """The per-execute limits of the process kernel: itimers delivering SIGALRM
    (wall time) and SIGPROF (CPU time) to the kernel's handlers."""

    def start(self, timeout_s: float | None, cpu_s: float | None) -> None:
        if timeout_s:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
        if cpu_s:
            signal.setitimer(signal.ITIMER_PROF, cpu_s)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.setitimer(signal.ITIMER_PROF, 0)


class _CallbackTimers(_Timers):
    """Timers of an embedding runtime with no itimers (Pyodide): `arm(seconds)` makes
    the runtime raise SIGALRM in the interpreter after `seconds`, `disarm()` cancels it.
    CPU time is bounded by the host, which sees the runtime's process."""

    def __init__(self, arm: Any, disarm: Any) -> None:
        self.arm, self.disarm = arm, disarm

    def start(self, timeout_s: float | None, cpu_s: float | None) -> None:
        if timeout_s:
            self.arm(timeout_s)

    def stop(self) -> None:
        self.disarm()


class _Stream:
    """Python-level stdout/stderr of user code: writes through to fd 1/2 (the capture
    files, so output stays in order with C-level writes) until `limit` bytes."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, fd: int, limit: int) -> None:
        self.fd, self.limit = fd, limit
        self.written = 0
        self.dropped = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        data = text.encode("utf-8", "backslashreplace")
        room = self.limit - self.written
        if len(data) > room:
            self.dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        if data:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            self.written += len(data)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def collect(self) -> str:
        """What was written to the capture file during this execute; resets it."""
        size = os.fstat(self.fd).st_size
        data = os.pread(self.fd, min(size, self.limit), 0)
        os.ftruncate(self.fd, 0)
        dropped = self.dropped + max(0, size - self.limit)
        self.written = self.dropped = 0
        text = data.decode("utf-8", "ignore" if dropped else "replace")
        if dropped:
            text += f"\n... [output truncated: {dropped} more bytes]"
        return text


# -- the REPL ----------------------------------------------------------------------------------


class Cell:
    """What the execute in progress has produced: output goes through `write`; the
    display of its last bare expression; its final answer."""

    def __init__(self, write: Callable[[str], Any]) -> None:
        self.write = write
        self.display: str | None = None
        self.final: str | None = None
        self.final_set = False


class Repl:
    """The REPL of every sandbox, written once: a persistent namespace, cells compiled
    with notebook-style display of a last bare expression, short tracebacks of the
    user's own frames, and the helpers (`HELPER_NAMES`).

    A sandbox provides `call` (a host function, by its `HOST_FUNCTIONS` name and
    checked arguments) and `cell` (the `Cell` of the execute in progress); it may pass
    a `restrict` hook to `compile` (the in-process sandbox's RestrictedPython policy).
    """

    #: values of these types are not the user's variables (modules)
    hidden_types: tuple[type, ...] = (types.ModuleType,)

    def __init__(self, namespace: dict[str, Any], output_limit: int) -> None:
        self.globals = namespace
        self.limit = output_limit
        self.cells = 0
        self.sources: dict[str, list[str]] = {}
        # the same code is the same cell, as in the local sandbox's compile cache: a
        # block run again fails with the same traceback (the engine spots repeats)
        self.cell_names: dict[str, str] = {}
        self.helpers = self._make_helpers()

    # -- what a sandbox provides ------------------------------------------------------------

    def call(self, name: str, args: dict[str, Any]) -> Any:
        """Run the host function `name` with `args` (checked) and return its value."""
        raise NotImplementedError(f"{type(self).__name__} does not provide call")

    def cell(self) -> Cell:
        """The cell of the execute in progress."""
        raise NotImplementedError(f"{type(self).__name__} does not provide cell")

    def type_name(self, value: Any) -> str:
        return type(value).__name__

    def limit_line(self, exc: BaseException) -> str | None:
        """The last line of the error when a limit of the sandbox caused `exc`, else None."""
        return None

    # -- cells ------------------------------------------------------------------------------

    def compile(self, code: str, restrict: Callable[[Any], Any] | None = None) -> types.CodeType:
        """Compile one cell, its last bare expression displayed; `restrict(tree)` may
        rewrite or refuse (SyntaxError) the parsed tree first. Raises what Python's
        compiler raises (SyntaxError; ValueError for a null byte before 3.11.4;
        MemoryError or RecursionError for a huge or deeply nested cell)."""
        filename = self.cell_names.get(code, f"<cell {self.cells + 1}>")
        # dont_inherit: this module's `from __future__ import annotations` must not leak
        tree = compile(code, filename, "exec", _ast.PyCF_ONLY_AST, dont_inherit=True)
        assert isinstance(tree, _ast.Module)
        if restrict is not None:
            tree = restrict(tree)
        last = tree.body[-1] if tree.body else None
        if isinstance(last, _ast.Expr):
            # `ast` itself would cost ~4 ms of the first execute; the C nodes suffice
            call = _located(
                _ast.Call(_located(_ast.Name("_display_", _ast.Load()), last), [last.value], []),
                last,
            )
            tree.body[-1] = _located(_ast.Expr(call), last)
        try:
            compiled: types.CodeType = compile(tree, filename, "exec", dont_inherit=True)
        except (ValueError, TypeError) as exc:  # a tree `restrict` rewrote past compiling
            raise SyntaxError(f"unsupported construct: {exc}") from None
        if code not in self.cell_names:
            self.cells += 1
            self.cell_names[code] = filename
        self.sources[filename] = code.splitlines()
        return compiled

    def compile_error(self, exc: BaseException) -> str:
        """The error of a cell that did not compile."""
        if isinstance(exc, (SyntaxError, ValueError)):
            import traceback

            error = "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")
            return self.shorten(error)
        return self.format_error(exc)  # a huge or deeply nested cell

    def prepare(self) -> None:
        """Put the helpers back before a cell runs (code may have rebound their names)."""
        self.globals.update(self.helpers)
        self.globals["_display_"] = self.display

    def format_error(self, exc: BaseException | None, last_line: str | None = None) -> str:
        """A short traceback with only the frames of the user's code, ending with
        `last_line` or the exception's own line."""
        frames = []
        tb = exc.__traceback__ if exc is not None else None
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename in self.sources:
                frames.append((code.co_filename, tb.tb_lineno, code.co_name))
            tb = tb.tb_next
        lines = ["Traceback (most recent call last):"] if frames else []
        shown: list[tuple[str, int, str] | None] = list(frames)
        if len(frames) > 12:
            shown = [*frames[:4], None, *frames[-6:]]
        for entry in shown:
            if entry is None:
                lines.append(f"  ... {len(frames) - 10} more frames ...")
                continue
            filename, lineno, name = entry
            lines.append(f'  File "{filename}", line {lineno}, in {name}')
            source = self.sources[filename]
            if 0 < lineno <= len(source) and source[lineno - 1].strip():
                lines.append(f"    {source[lineno - 1].strip()}")
        if last_line is None and exc is not None:
            last_line = self.limit_line(exc) or exception_line(exc)
        lines.append(last_line or "Error")
        return self.shorten("\n".join(lines))

    def shorten(self, error: str) -> str:
        """`error` cut to about the output limit, keeping the start of its last line
        (the exception type and message say what went wrong) and the frames just
        before it."""
        limit = self.limit
        if len(error) <= limit:
            return error
        *frames, last = error.rstrip("\n").split("\n")
        if len(last) > limit:
            last = last[:limit] + " ... [truncated]"
        room = limit - len(last)
        before = "\n".join(frames)[-room:] if room > 0 and frames else ""
        return "[error truncated] ...\n" + (before + "\n" if before else "") + last

    def display(self, value: Any) -> None:
        """Show the value of a cell's last bare expression (`_display_` in the code)."""
        if value is None:
            return
        cell = self.cell()
        text = repr(value)
        cell.display = text if len(text) <= self.limit else text[: self.limit] + " ... [truncated]"
        cell.write(text + "\n")

    def user_variables(self) -> dict[str, Any]:
        helpers = self.helpers
        return {
            name: value
            for name, value in self.globals.items()
            if not name.startswith("_")
            and (name not in helpers or helpers[name] is not value)
            and not isinstance(value, self.hidden_types)
        }

    # -- the helpers ------------------------------------------------------------------------

    def _make_helpers(self) -> dict[str, Any]:
        helpers: dict[str, Any] = {
            name: _host_helper(function, self)
            for name, function in HOST_FUNCTIONS.items()
            if function.helper
        }
        helpers["tools"] = Tools(self)
        helpers["memory"] = Memory(self)

        def FINAL(*value: Any) -> None:
            """Mark `value` as the final answer."""
            answer = render_final(value)
            cell = self.cell()
            cell.final, cell.final_set = answer, True

        def FINAL_VAR(name: str) -> None:
            """Mark the variable called `name` as the final answer."""
            if not isinstance(name, str):
                raise TypeError(
                    'FINAL_VAR() takes the name of a variable as a string, e.g. FINAL_VAR("answer")'
                )
            variables = self.user_variables()
            if name not in variables:
                available = ", ".join(sorted(variables)) or "(none)"
                raise NameError(
                    f"FINAL_VAR: no variable named {name!r}; available variables: {available}"
                )
            FINAL(variables[name])

        def SHOW_VARS() -> None:
            """Print the variables defined in the sandbox and their types."""
            variables = self.user_variables()
            if not variables:
                self.cell().write("No variables defined yet.\n")
                return
            lines = [f"  {n}: {self.type_name(v)}" for n, v in sorted(variables.items())]
            self.cell().write("Variables:\n" + "\n".join(lines) + "\n")

        helpers["FINAL"], helpers["FINAL_VAR"], helpers["SHOW_VARS"] = FINAL, FINAL_VAR, SHOW_VARS
        return helpers


def _host_helper(function: HostFunction, repl: Repl) -> Callable[..., Any]:
    """The helper code calls for `function`: its arguments checked, then `repl.call`."""
    name, arguments, batched = function.name, function.arguments, function.batched

    def helper(*args: Any, **kwargs: Any) -> Any:
        value = repl.call(name, arguments(*args, **kwargs))
        spec = kwargs.get("output_type")  # keyword-only where it exists
        return value if spec is None else _typed_result(spec, value, batched)

    helper.__name__ = helper.__qualname__ = name
    helper.__doc__ = arguments.__doc__
    return helper


class Tools:
    """`tools` in the REPL: `tools.NAME(...)` calls the host tool NAME (its arguments are
    checked on the host, against the tool's schema); `tools.batch([("NAME", {...}), ...])`
    runs several calls concurrently. Which tools exist is the host's business: the
    system prompt lists them, and calling one that is not offered says why."""

    __slots__ = ("_repl",)

    def __init__(self, repl: Repl) -> None:
        self._repl = repl

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        repl = self._repl

        def call(*args: Any, **kwargs: Any) -> Any:
            return repl.call("tool_call", _tool_call(name, args, kwargs))

        call.__name__ = call.__qualname__ = name
        call.__doc__ = f"Call the host tool {name!r} (see the tools listed in the system prompt)."
        return call

    def batch(self, calls: Any) -> list[Any]:
        """Run several tool calls concurrently; results in order, a failed call's
        item is a QueryFailed (check with isinstance(r, Exception))."""
        result: list[Any] = self._repl.call("tool_batch", _tool_batch(calls))
        return result

    def __repr__(self) -> str:
        return "<tools: call tools.NAME(...) or tools.batch([('NAME', {...}), ...])>"


class Memory:
    """`memory` in the REPL: the project's memory, kept on the host between runs.
    `memory.remember(text, tags=None, pin=False)` gives the new item's id,
    `memory.recall(query, k=5)` the best matches (dicts: id, text, kind, tags, pinned),
    `memory.forget(item_id)` whether there was such an item."""

    __slots__ = ("_repl",)

    def __init__(self, repl: Repl) -> None:
        self._repl = repl

    def remember(self, text: str, tags: Any = None, pin: bool = False) -> str:
        """Remember `text` (optional one-word `tags`; `pin`: shown in later runs' prompts)."""
        item_id: str = self._repl.call("memory_remember", _memory_remember(text, tags, pin))
        return item_id

    def recall(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """The `k` remembered items that best match `query`, best first."""
        items: list[dict[str, Any]] = self._repl.call("memory_recall", _memory_recall(query, k))
        return items

    def forget(self, item_id: str) -> bool:
        """Forget one item; False when there was none with that id."""
        gone: bool = self._repl.call("memory_forget", _memory_forget(item_id))
        return gone

    def __repr__(self) -> str:
        return "<memory: remember(text, tags=None, pin=False), recall(query, k=5), forget(id)>"


class Kernel(Repl):
    def __init__(
        self,
        channel: _Channel | _CallbackChannel,
        config: dict[str, Any],
        capture_dir: str,
        timers: _Timers | None = None,
    ) -> None:
        self.channel = channel
        self.timers = timers or _Timers()
        self.armed = False
        self.timeout_s: float | None = config.get("timeout_s")
        self.cpu_s: float | None = config.get("cpu_s")
        self.memory_mb: int | None = config.get("memory_mb")
        limit = int(config.get("output_bytes") or 1_000_000)
        self.out = _Stream(_capture_fd(1, capture_dir, "stdout"), limit)
        self.err = _Stream(_capture_fd(2, capture_dir, "stderr"), limit)
        sys.stdout = sys.__stdout__ = self.out  # type: ignore[assignment,misc]
        sys.stderr = sys.__stderr__ = self.err  # type: ignore[assignment,misc]
        self.calls = 0
        self.current = Cell(self.out.write)
        self.interrupt: str | None = None
        super().__init__({"__name__": "__main__", "__builtins__": builtins}, limit)

    def cell(self) -> Cell:
        return self.current

    # -- the loop -----------------------------------------------------------------------

    def serve(self) -> None:
        self.channel.send({"op": "ready", "pid": os.getpid()})
        while True:
            msg = self.channel.poll(None)
            if msg is None:
                continue
            op, mid = msg.get("op"), msg.get("id")
            if op == "shutdown":
                return
            if op == "execute":
                try:
                    done = self.execute(str(msg["code"]))
                except MemoryError:  # memory held by user variables leaves no room to answer
                    done = {
                        "error": f"MemoryError: out of memory (memory_mb={self.memory_mb} limit)"
                    }
                self.channel.send({"op": "done", "id": mid, **done})
                continue
            try:
                value = self.handle(op, msg)
            except Exception as exc:  # noqa: BLE001 - reported to the host as data
                self.channel.send({"op": "error", "id": mid, "error": exception_line(exc)})
            else:
                self.channel.send({"op": "value", "id": mid, "value": value})

    def handle(self, op: Any, msg: dict[str, Any]) -> Any:
        if op == "set":
            self.globals[_check_name(msg["name"])] = _sent_value(msg)
            return None
        if op == "get":
            names = self.user_variables()
            name = msg["name"]
            if name not in names:
                raise LookupError(
                    f"no variable named {name!r} in the sandbox;"
                    f" variables: {', '.join(names) or '(none)'}"
                )
            found = names[name]
            try:
                _encode_strict(found)
            except TypeError:
                packed = pack_bytes(found)  # the host unpacks every value it gets
                try:
                    _encode_strict(packed)
                except TypeError:
                    if not msg.get("rendered"):
                        raise  # what cannot travel is refused, with a TypeError naming it
                    return render_value(found)
                return packed
            return found
        if op == "list":
            return {name: self.type_name(v) for name, v in self.user_variables().items()}
        if op == "load_context" and "path" not in msg:  # sent in the message itself
            self.globals[_check_name(msg.get("name", "context"))] = _sent_value(msg)
            return None
        if op == "load_context":
            path = str(msg["path"])
            with open(path, "rb") as f:
                data = f.read()
            if path.endswith(".json"):
                value: Any = _decode(data.decode("utf-8"))
            elif path.endswith(".bjson"):  # JSON data holding bytes (`pack_bytes`)
                value = unpack_bytes(_decode(data.decode("utf-8")))
            elif path.endswith(".txt"):
                value = data.decode("utf-8", "surrogateescape")
            else:
                value = data
            self.globals[_check_name(msg.get("name", "context"))] = value
            return None
        if op == "result":
            return None  # the late answer of a call that was interrupted: ignored
        raise ValueError(f"unknown op {op!r}")

    # -- execute --------------------------------------------------------------------------

    def execute(self, code: str) -> dict[str, Any]:
        started = time.perf_counter()
        cell = self.current = Cell(self.out.write)
        self.interrupt = None
        error: str | None = None
        try:
            compiled = self.compile(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
            error = self.compile_error(exc)
        else:
            _reap()
            self.prepare()
            error = self._run(compiled)
        return {
            "stdout": self.out.collect(),
            "stderr": self.err.collect(),
            "error": error,
            "final": cell.final,
            "final_set": cell.final_set,
            "display": cell.display,
            "duration_s": time.perf_counter() - started,
        }

    def _run(self, compiled: types.CodeType) -> str | None:
        exc: BaseException | None = None
        try:
            self._arm()
            try:
                exec(compiled, self.globals)
            finally:
                self._disarm()
        except BaseException as caught:  # noqa: BLE001 - becomes the execute's error
            exc = caught
        if exc is None:
            return None
        try:
            return self.format_error(exc)
        finally:
            # the traceback holds this frame: a cycle that would keep the code's memory
            # (say, what it grew until a MemoryError) until the next garbage collection
            exc = None

    def limit_line(self, exc: BaseException) -> str | None:
        if isinstance(exc, _Interrupt) and exc.limit == "timeout_s":
            return timeout_message(self.timeout_s)
        if isinstance(exc, _Interrupt):
            return cpu_message(self.cpu_s)
        if isinstance(exc, MemoryError):
            detail = str(exc) or "out of memory"
            return f"MemoryError: {detail} (memory_mb={self.memory_mb} limit)"
        return None

    def _arm(self) -> None:
        def on_timer(signum: int, frame: Any) -> None:
            if not self.armed:
                return  # a late signal of a finished execute
            limit = "timeout_s" if signum == signal.SIGALRM else "cpu_s"
            self.interrupt = limit
            raise _Interrupt(limit)

        if self.timeout_s:
            signal.signal(signal.SIGALRM, on_timer)
        if self.cpu_s:
            signal.signal(signal.SIGPROF, on_timer)
        self.armed = True
        self.timers.start(self.timeout_s, self.cpu_s)

    def _disarm(self) -> None:
        self.armed = False
        self.timers.stop()

    # -- calls to the host ----------------------------------------------------------------

    def call(self, name: str, args: dict[str, Any]) -> Any:
        self.calls += 1
        cid = self.calls
        # bytes and Media (an rlm_query context) travel as data, never as their repr
        self.channel.send({"op": "call", "id": cid, "fn": name, "args": pack_bytes(args)})
        while True:
            # between polls the timer signals are unblocked: an interrupt lands here
            msg = self.channel.poll(0.05)
            if msg is None:
                continue
            if msg.get("op") == "shutdown":
                raise SystemExit(0)
            if msg.get("op") == "result" and msg.get("id") == cid:
                break
        if not msg.get("ok"):
            raise _remote_error(str(msg.get("error") or "the host call failed"))
        value = msg.get("value")
        if HOST_FUNCTIONS[name].batched:
            return [
                item.get("value") if item.get("ok") else QueryFailed(str(item.get("error")))
                for item in value or ()
            ]
        return value


def _reap(wait_s: float = 1.0, waitpid: Any = os.waitpid, sleep: Any = time.sleep) -> None:
    """Collect the children the host killed after the last execute (their pids count
    against the sandbox's process limit until then), waiting up to `wait_s` for the
    ones still dying. (The defaults bind the functions: user code may replace
    ``os.waitpid`` or ``time.sleep``.)"""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            pid, _ = waitpid(-1, os.WNOHANG)
        except OSError:  # ChildProcessError: none left
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            sleep(0.002)


def _remote_error(message: str) -> BaseException:
    """The host's "<Type>: <message>" as an exception of that name in user code."""
    name, sep, text = message.partition(": ")
    if not sep or not name.isidentifier():
        return RuntimeError(message)
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        return builtin(text)
    named: type[Exception] = type(name, (Exception,), {"__module__": "builtins"})
    return named(text)


def variable_name_problem(name: Any) -> str | None:
    """Why `name` cannot be set as a sandbox variable, or None."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        return f"{name!r} is not a valid variable name"
    if name.startswith("_") or name in HELPER_NAMES:
        return f"{name!r} is reserved in the sandbox; choose another name"
    return None


def _check_name(name: Any) -> str:
    problem = variable_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return str(name)


def exception_line(exc: BaseException) -> str:
    """ "<Type>: <message>" of `exc` (its type alone when the message is empty)."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error
        message = "<unprintable message>"
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def _located(node: Any, where: Any) -> Any:
    """`node` with the source position of `where` (what `ast.copy_location` does)."""
    for field in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
        setattr(node, field, getattr(where, field))
    return node


def _capture_fd(target: int, folder: str, name: str) -> int:
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    os.unlink(path)  # nothing is left behind, whatever way the kernel ends
    os.dup2(fd, target)
    os.close(fd)
    return target


def _limit_self(config: dict[str, Any]) -> None:
    """Drop to an unprivileged uid (when started as root) and set the rlimits."""
    import resource

    for name, value in (config.get("rlimits") or {}).items():
        which = getattr(resource, name)
        resource.setrlimit(which, (int(value), int(value)))
    uid, gid = config.get("uid"), config.get("gid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(int(gid if gid is not None else uid))
        os.setuid(int(uid))
    # a write past RLIMIT_FSIZE fails with EFBIG instead of killing the kernel
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _private_dir() -> str:
    """A new 0700 folder for the capture files (tempfile is slow to import)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    for n in range(1000):
        path = os.path.join(base, f"rlmrt-kernel-{os.getpid()}-{time.monotonic_ns()}-{n}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free folder name in {base}")


def _report(fd: int) -> None:
    import traceback

    os.write(fd, traceback.format_exc().encode("utf-8", "replace"))


def serve_embedded(config: str, read: Any, write: Any, arm: Any, disarm: Any) -> None:
    """Run the kernel inside an embedding runtime (Pyodide under Deno, see
    `rlmrt.sandbox.wasm`): frames and the wall-time timer come from the runtime's
    functions (`_CallbackChannel`, `_CallbackTimers`); `config` is the JSON `main` takes.
    fds 1/2 become the capture files as in `main`, so nothing user code prints reaches
    the runtime's own output."""
    capture_dir = _private_dir()
    channel = _CallbackChannel(read, write)
    kernel = Kernel(channel, _decode(config), capture_dir, _CallbackTimers(arm, disarm))
    os.rmdir(capture_dir)
    kernel.serve()


HOST_GONE_EXIT = 70  # the kernel's exit code when the host's end of the channel closed
HOST_GONE_GRACE_S = 1.0
THREADS_AT_REST = 2  # the kernel's own threads: the main one and `_exit_with_host`'s


def _exit_with_host(rfd: int) -> None:
    """End the kernel as soon as the host's end of the channel closes, even while a cell
    runs: a host that was killed cannot stop a busy or sleeping cell any more, and in a
    container nothing else would (the next start's sweep is late). One thread, blocked
    in poll() with every signal masked, so the timers still reach the main thread."""
    import _thread

    def watch() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        poller = select.poll()
        poller.register(rfd, 0)  # no events asked: poll() reports only hang-up and errors
        while True:
            for _, event in poller.poll():
                if event & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    # a host that closes after `shutdown` gets the kernel's own clean exit
                    time.sleep(HOST_GONE_GRACE_S)
                    os._exit(HOST_GONE_EXIT)

    _thread.start_new_thread(watch, ())


def main(argv: list[str]) -> int:
    config: dict[str, Any] = _decode(argv[1]) if len(argv) > 1 else {}
    rfd, wfd = os.dup(0), os.dup(1)  # dup'ed fds are not inherited by child processes
    errfd = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        _limit_self(config)
        capture_dir = _private_dir()
        kernel = Kernel(_Channel(rfd, wfd), config, capture_dir)
        os.rmdir(capture_dir)
        _exit_with_host(rfd)
    except BaseException:  # noqa: BLE001 - reported on the kernel's stderr
        # the host shows this (the kernel's own stderr) in its error
        _report(errfd)
        return 1
    try:
        kernel.serve()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported on the kernel's stderr
        _report(errfd)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
