"""The RestrictedPython guards and the builtins of the local sandbox.

RestrictedPython rewrites `a.b` into `_getattr_(a, "b")`, `a[b]` into `_getitem_(a, b)`,
`a.b = c` into `_write_(a).b = c` and so on; this module supplies those functions.
What they enforce:

- no attribute starting with `_` and none of the frame/code/traceback attributes;
  no attribute value that is a module (unless it is an allowed module, which is then
  replaced by its proxy), a code object, a frame or a traceback;
- `str.format` may not walk attributes of its arguments (`"{0.__class__}"`);
- writes (attributes, items) only to plain containers and to objects of classes
  defined by the sandboxed code itself;
- size estimates before C code builds something big in one call (`"a" * 10**10`,
  `bytearray(10**10)`, `list(range(10**10))`, `10**10**8`, `" ".ljust(10**10)`), and
  C consumers of unbounded iterables made to tick (see `_limits`).
"""

from __future__ import annotations

import builtins
import math
import operator
import pprint as _pprint
import re
import string
import types
from collections import deque
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

from RestrictedPython.Guards import safe_builtins
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from rlmrt.sandbox._limits import Clock, TickingIter, human_bytes
from rlmrt.sandbox._safe_modules import ModuleProxy, ModuleTable

SANDBOX_MODULE = "__rlm__"  # the __name__ of sandboxed code; its classes carry it
_MISSING: Any = object()
_INT_CAP_BYTES = 1 << 20  # one integer result; big-int arithmetic in C cannot be interrupted

_BLOCKED_VALUES = (types.ModuleType, types.CodeType, types.FrameType, types.TracebackType)
_TEXT = (str, bytes, bytearray)
_SEQ = (str, bytes, bytearray, list, tuple)
_CONTAINERS = (list, dict, set, frozenset, bytearray, deque)
_ITERABLE_ARG_METHODS = frozenset(
    {
        "extend",
        "extendleft",
        "update",
        "fromkeys",
        "union",
        "intersection",
        "difference",
        "symmetric_difference",
        "issubset",
        "issuperset",
        "isdisjoint",
        "intersection_update",
        "difference_update",
        "symmetric_difference_update",
    }
)
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})
_INTERCEPTED = frozenset(
    {
        "format",
        "format_map",
        "join",
        "replace",
        "expandtabs",
        "to_bytes",
        "digest",
        "hexdigest",
        "register",
        *_WIDTH_METHODS,
        *_ITERABLE_ARG_METHODS,
    }
)
_PRINTF_SPEC = re.compile(rb"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_FORMATTER = string.Formatter()
_EXTRA_EXCEPTIONS = (
    "ConnectionError",
    "FileNotFoundError",
    "ModuleNotFoundError",
    "PermissionError",
    "RecursionError",
    "StopAsyncIteration",
    "TimeoutError",
)
_PLAIN_BUILTINS = (
    *("abs", "ascii", "bin", "bool", "callable", "chr", "complex", "divmod", "float", "hash"),
    *("hex", "id", "int", "isinstance", "issubclass", "len", "next", "oct", "ord", "range"),
    *("repr", "reversed", "round", "slice", "str", "object", "super", "property"),
    *("classmethod", "staticmethod"),
)


def is_sandbox_class(cls: type) -> bool:
    """True for classes defined by sandboxed code (only builtins above them)."""
    if getattr(cls, "__module__", None) != SANDBOX_MODULE:
        return False
    return all(c.__module__ in (SANDBOX_MODULE, "builtins") for c in cls.__mro__)


class _ReadOnly:
    """What `_write_` returns for objects the sandbox may not modify."""

    __slots__ = ("_kind",)

    def __init__(self, ob: object) -> None:
        object.__setattr__(self, "_kind", type(ob).__name__)

    def _deny(self, *args: object) -> None:
        kind = object.__getattribute__(self, "_kind")
        raise TypeError(f"{kind} objects cannot be modified in the sandbox")

    __setattr__ = __delattr__ = __setitem__ = __delitem__ = _deny


class TypeShim:
    """Stands in for a builtin type whose constructor needs a size check.

    Behaves like the type for `isinstance`, `issubclass`, subclassing and class
    attributes (`dict.fromkeys`, `str.join`), but calls a checking factory.
    """

    __slots__ = ("_factory", "_guards", "_real")

    def __init__(self, real: type, factory: Callable[..., Any], guards: Guards) -> None:
        self._real = real
        self._factory = factory
        self._guards = guards

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._factory(*args, **kwargs)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(_unshim(obj), self._real)

    def __subclasscheck__(self, cls: Any) -> bool:
        return issubclass(_unshim(cls), self._real)

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type]:
        if self._real is type:
            raise TypeError("metaclasses cannot be defined in the sandbox")
        return (self._real,)

    def __getattr__(self, name: str) -> Any:
        return self._guards.getattr_(self._real, name)

    def __getitem__(self, item: Any) -> Any:
        return self._real[item]  # type: ignore[index]

    def __repr__(self) -> str:
        return repr(self._real)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("cannot subclass TypeShim")


def _unshim(obj: Any) -> Any:
    return obj._real if type(obj) is TypeShim else obj


class Guards:
    """The guard functions and builtins of one sandbox."""

    def __init__(self, clock: Clock, write_output: Callable[[str], None]) -> None:
        self.clock = clock
        self.write_output = write_output
        limit = clock.rss_limit
        self.int_cap_bits = 8 * (min(limit, _INT_CAP_BYTES) if limit else _INT_CAP_BYTES)
        self.text_cap = limit if limit else 1 << 40
        self._shims: dict[type, TypeShim] = {}
        self.modules = ModuleTable(self)
        self._inplace: dict[str, Callable[[Any, Any], Any]] = {
            "+=": self.iadd_,
            "-=": operator.isub,
            "*=": self.mul_,
            "/=": operator.itruediv,
            "//=": operator.ifloordiv,
            "%=": self.mod_,
            "**=": self.pow_,
            "<<=": self.lshift_,
            ">>=": operator.irshift,
            "|=": operator.ior,
            "^=": operator.ixor,
            "&=": operator.iand,
            "@=": operator.imatmul,
        }

    # -- attribute access ------------------------------------------------------------

    def getattr_(self, obj: Any, name: Any, default: Any = _MISSING) -> Any:
        if type(name) is not str:
            raise TypeError("attribute name must be a string")
        if name.startswith("_") or name in INSPECT_ATTRIBUTES or name.endswith("__roles__"):
            raise AttributeError(f"attribute {name!r} is not accessible in the sandbox")
        if name in _INTERCEPTED:
            special = self._intercept(obj, name)
            if special is not _MISSING:
                return special
        try:
            value = getattr(obj, name)
        except AttributeError as exc:
            if default is not _MISSING:
                return default
            raise AttributeError(str(exc)) from None
        if isinstance(value, _BLOCKED_VALUES):
            return self._blocked_value(value, name)
        return value

    def getattr_builtin(self, obj: Any, name: Any, *default: Any) -> Any:
        """The sandbox's `getattr(obj, name[, default])`."""
        return self.getattr_(obj, name, *default)

    def hasattr_(self, obj: Any, name: Any) -> bool:
        try:
            self.getattr_(obj, name)
        except AttributeError:
            return False
        return True

    def _blocked_value(self, value: Any, name: str) -> Any:
        if isinstance(value, types.ModuleType):
            proxy = self.modules.proxy_for(value)
            if proxy is not None:
                return proxy
        raise AttributeError(f"attribute {name!r} is not accessible in the sandbox")

    def _intercept(self, obj: Any, name: str) -> Any:
        if name == "register" and not is_sandbox_class(obj if isinstance(obj, type) else type(obj)):
            raise AttributeError("register() is not available in the sandbox")
        if isinstance(obj, type):
            if name == "fromkeys" and issubclass(obj, dict):
                return self._bounding(obj.fromkeys)
            if issubclass(obj, (*_TEXT, int, *_CONTAINERS)) and hasattr(obj, name):
                # unbound use through the class (str.join(sep, xs)): check like the bound one
                def call_unbound(inst: Any, *args: Any, **kwargs: Any) -> Any:
                    if not isinstance(inst, obj):
                        raise TypeError(f"{obj.__name__}.{name}() needs a {obj.__name__}")
                    return self.getattr_(inst, name)(*args, **kwargs)

                return call_unbound
            return _MISSING
        if isinstance(obj, str) and name in ("format", "format_map"):
            if name == "format_map":
                raise NotImplementedError("str.format_map() is not available in the sandbox")
            return self._safe_format(obj)
        if isinstance(obj, _TEXT):
            return self._text_method(obj, name)
        if isinstance(obj, int) and name == "to_bytes":
            method = obj.to_bytes

            def to_bytes(length: int = 1, *args: Any, **kwargs: Any) -> bytes:
                self.clock.check_size(length, "int.to_bytes()")
                return method(length, *args, **kwargs)

            return to_bytes
        if name in _ITERABLE_ARG_METHODS and isinstance(obj, _CONTAINERS):
            return self._bounding(getattr(obj, name))
        if name in ("digest", "hexdigest"):
            method = getattr(obj, name)

            def digest(*args: Any, **kwargs: Any) -> Any:
                if args and isinstance(args[0], int):
                    self.clock.check_size(args[0] * 2, f"{name}()")
                return method(*args, **kwargs)

            return digest
        return _MISSING

    def _bounding(self, method: Callable[..., Any]) -> Callable[..., Any]:
        bounded, check = self.clock.bounded, self.clock.check_items
        what = f"{getattr(method, '__name__', 'method')}()"

        def call(*args: Any, **kwargs: Any) -> Any:
            for arg in args:
                check(arg, what)
            return method(*[bounded(a) for a in args], **kwargs)

        return call

    def _text_method(self, text: Any, name: str) -> Any:
        method = getattr(text, name, None)
        if method is None:
            return _MISSING
        unit = 4 if isinstance(text, str) and not text.isascii() else 1
        check = self.clock.check_size
        what = f"{type(text).__name__}.{name}()"

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in _WIDTH_METHODS:
                if args and isinstance(args[0], int):
                    check(args[0] * unit, what)
            elif name == "join":
                parts = args[0] if args else ()
                if isinstance(parts, (list, tuple)):
                    check(len(text) * len(parts) * unit, what)
                args = (self.clock.bounded(parts), *args[1:])
            elif name == "replace" and len(args) >= 2:
                old, new = args[0], args[1]
                grow = len(new) - len(old)
                if grow > 0:
                    n = text.count(old) if old else len(text) + 1
                    limit = args[2] if len(args) > 2 else kwargs.get("count", -1)
                    if isinstance(limit, int) and limit >= 0:
                        n = min(n, limit)
                    check((len(text) + n * grow) * unit, what)
            elif name == "expandtabs":
                size = args[0] if args else kwargs.get("tabsize", 8)
                if isinstance(size, int):
                    tabs = text.count("\t" if isinstance(text, str) else b"\t")
                    check((len(text) + tabs * size) * unit, what)
            return method(*args, **kwargs)

        return call

    def _safe_format(self, template: str) -> Callable[..., str]:
        def format(*args: Any, **kwargs: Any) -> str:
            nested = self._check_format_template(template)
            if nested:
                for value in (*args, *kwargs.values()):
                    if isinstance(value, int) and value > self.text_cap:
                        raise MemoryError("format width over the sandbox memory limit")
            return template.format(*args, **kwargs)

        return format

    def _check_format_template(self, template: str, depth: int = 0) -> bool:
        nested = False
        for _literal, field, spec, _conv in _FORMATTER.parse(template):
            if field is None:
                continue
            if "." in field:
                raise NotImplementedError(
                    "attribute lookups in str.format fields are not allowed in the sandbox;"
                    " use an f-string"
                )
            if spec:
                if "{" in spec and depth < 2:
                    nested = True
                    self._check_format_template(spec, depth + 1)
                else:
                    self.check_format_spec(spec)
        return nested

    def check_format_spec(self, spec: str) -> None:
        for digits in _DIGITS.findall(spec):
            if len(digits) > 15 or int(digits) > self.text_cap:
                raise MemoryError(
                    f"format width {digits} is over the sandbox memory limit"
                    f" (memory_mb={self.clock.memory_mb})"
                )

    def fmt_(self, value: Any, conversion: int, spec: str) -> str:
        """An f-string field with a format spec: `f"{x:>{n}}"`."""
        if conversion == 114:
            value = repr(value)
        elif conversion == 115:
            value = str(value)
        elif conversion == 97:
            value = ascii(value)
        self.check_format_spec(spec)
        return format(value, spec)

    def format_(self, value: Any, spec: str = "") -> str:
        self.check_format_spec(spec)
        return format(value, spec)

    # -- writes ------------------------------------------------------------------------

    def write_(self, ob: Any) -> Any:
        kind = type(ob)
        if kind is dict or kind is list:
            return ob
        if isinstance(ob, type):
            if is_sandbox_class(ob):
                return ob
        elif is_sandbox_class(kind) or isinstance(ob, (dict, list, bytearray, deque, set)):
            return ob
        return _ReadOnly(ob)

    def setattr_(self, obj: Any, name: Any, value: Any) -> None:
        self._check_write_name(name)
        setattr(self.write_(obj), name, value)

    def delattr_(self, obj: Any, name: Any) -> None:
        self._check_write_name(name)
        delattr(self.write_(obj), name)

    @staticmethod
    def _check_write_name(name: Any, verb: str = "set") -> None:
        if type(name) is not str:
            raise TypeError("attribute name must be a string")
        if name.startswith("_"):
            raise AttributeError(f"attribute {name!r} cannot be {verb} in the sandbox")

    def setitem(self, obj: Any, key: Any, value: Any) -> None:
        self.write_(obj)[key] = value

    def delitem(self, obj: Any, key: Any) -> None:
        del self.write_(obj)[key]

    def inplacevar_(self, op: str, x: Any, y: Any) -> Any:
        return self._inplace[op](x, y)

    def augitem_(self, obj: Any, key: Any, op: str, value: Any) -> None:
        """`obj[key] op= value` (RestrictedPython refuses it; common in counting code)."""
        self.write_(obj)[key] = self.inplacevar_(op, obj[key], value)

    def augattr_(self, obj: Any, name: str, op: str, value: Any) -> None:
        self.setattr_(obj, name, self.inplacevar_(op, self.getattr_(obj, name), value))

    # -- items, iteration, calls --------------------------------------------------------

    @staticmethod
    def getitem_(ob: Any, key: Any) -> Any:
        return ob[key]

    @staticmethod
    def apply_(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    def unpack_(self, value: Any) -> Any:
        """The value of a starred expression (`[*x]`, `f(*x)`)."""
        self.clock.check_items(value, "unpacking")
        return self.clock.bounded(value)

    def unpack_sequence_(self, it: Any, spec: dict[str, Any], _getiter: Any = None) -> Any:
        result = self.materialize(list, it)
        if len(result) >= spec["min_len"]:
            for idx, child in spec["childs"]:
                result[idx] = self.unpack_sequence_(result[idx], child)
        return result

    def iter_unpack_sequence_(
        self, it: Any, spec: dict[str, Any], _getiter: Any = None
    ) -> Iterator[Any]:
        for ob in it:
            yield self.unpack_sequence_(ob, spec)

    def materialize(self, kind: Callable[[Any], Any], iterable: Any) -> Any:
        self.clock.check_items(iterable, f"{getattr(kind, '__name__', 'collection')}()")
        return kind(self.clock.bounded(iterable))

    # -- arithmetic -------------------------------------------------------------------

    def _int_cap(self, bits: float, what: str) -> None:
        if bits > self.int_cap_bits:
            raise MemoryError(
                f"{what} would be an integer of about {human_bytes(bits / 8)}; the sandbox"
                f" caps one integer at {human_bytes(self.int_cap_bits / 8)}"
                f" (memory_mb={self.clock.memory_mb})"
            )

    def add_(self, a: Any, b: Any) -> Any:
        if isinstance(a, _SEQ) and isinstance(b, _SEQ):
            self._check_concat(len(a) + len(b), a)
        return a + b

    def iadd_(self, a: Any, b: Any) -> Any:
        if isinstance(a, (list, bytearray)):  # extended in place: only b is new
            self.clock.check_items(b, f"{type(a).__name__} +=", 8 if isinstance(a, list) else 1)
            b = self.clock.bounded(b)
        elif isinstance(a, _SEQ) and isinstance(b, _SEQ):
            self._check_concat(len(a) + len(b), a)
        a += b
        return a

    def _check_concat(self, n: int, like: Any) -> None:
        if n > 1 << 18:
            unit = 8 if isinstance(like, (list, tuple)) else 1
            self.clock.check_size(n * unit, f"{type(like).__name__} concatenation")

    def mul_(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int):
            if a.bit_length() + b.bit_length() > self.int_cap_bits:
                self._int_cap(a.bit_length() + b.bit_length(), "the product")
        elif isinstance(b, int) and isinstance(a, _SEQ):
            self._check_repeat(a, b)
        elif isinstance(a, int) and isinstance(b, _SEQ):
            self._check_repeat(b, a)
        return a * b

    def _check_repeat(self, seq: Any, n: int) -> None:
        if n > 1 and seq:
            if isinstance(seq, str):
                unit = 1 if seq.isascii() else 4
            else:
                unit = 1 if isinstance(seq, (bytes, bytearray)) else 8
            self.clock.check_size(len(seq) * n * unit, f"{type(seq).__name__} * {n}")

    def pow_(self, a: Any, b: Any, mod: Any = None) -> Any:
        if mod is not None:
            return pow(a, b, mod)
        if isinstance(b, int) and b > 1:
            if isinstance(a, int) and abs(a) > 1:
                self._int_cap(b * math.log2(abs(a)), f"{a if a < 1e6 else 'n'} ** {b}")
            elif isinstance(a, Fraction):
                size = max(abs(a.numerator), a.denominator)
                if size > 1:
                    self._int_cap(b * math.log2(size), f"Fraction ** {b}")
        return a**b

    def lshift_(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int) and a and b > 0:
            self._int_cap(a.bit_length() + b, f"<< {b}")
        return a << b

    def mod_(self, a: Any, b: Any) -> Any:
        if isinstance(a, (str, bytes)):
            fmt = a.encode("utf-8", "replace") if isinstance(a, str) else a
            stars = False
            for width, precision in _PRINTF_SPEC.findall(fmt):
                for part in (width, precision):
                    if part == b"*":
                        stars = True
                    elif part and (len(part) > 15 or int(part) > self.text_cap):
                        raise MemoryError("% format width is over the sandbox memory limit")
            if stars:
                for value in b if isinstance(b, tuple) else (b,):
                    if isinstance(value, int) and value > self.text_cap:
                        raise MemoryError("% format width is over the sandbox memory limit")
        return a % b

    # -- builtins -----------------------------------------------------------------------

    def shim(
        self,
        real: type,
        factory: Callable[..., Any] | None = None,
        *,
        bounded_args: bool = False,
    ) -> TypeShim:
        if factory is None:
            bounded = self.clock.bounded
            check = self.clock.check_items

            def factory(*args: Any, **kwargs: Any) -> Any:
                if args:
                    check(args[0], f"{real.__name__}()")
                return real(*[bounded(a) for a in args], **kwargs)

        shim = TypeShim(real, factory, self)
        self._shims[real] = shim
        return shim

    def as_seen(self, cls: Any) -> Any:
        """A class as sandboxed code sees it: its shim if it has one."""
        if isinstance(cls, type) and issubclass(cls, type):
            return self._shims[type]
        return self._shims.get(cls, cls) if isinstance(cls, type) else cls

    def type_(self, obj: Any, *rest: Any) -> Any:
        if rest:
            raise TypeError("type() takes one argument in the sandbox; define classes with class")
        kind = type(obj)
        if kind is TypeShim or issubclass(kind, type):
            return self._shims[type]
        return self._shims.get(kind, kind)

    def dir_(self, *args: Any) -> list[str]:
        if len(args) != 1:
            raise TypeError("dir() takes exactly one argument in the sandbox")
        return sorted(n for n in dir(_unshim(args[0])) if not n.startswith("_"))

    def pprint(self, obj: Any, *args: Any, stream: Any = None, **kwargs: Any) -> None:
        text = _pprint.pformat(obj, *args, **kwargs) + "\n"
        if stream is None:
            self.write_output(text)
        else:
            self.getattr_(stream, "write")(text)

    def attrgetter(self, *names: str) -> Callable[[Any], Any]:
        for name in names:
            for part in str(name).split("."):
                self._check_write_name(part, "read")

        def get(obj: Any) -> Any:
            values = []
            for name in names:
                value = obj
                for part in name.split("."):
                    value = self.getattr_(value, part)
                values.append(value)
            return values[0] if len(values) == 1 else tuple(values)

        return get

    def methodcaller(self, name: str, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        self._check_write_name(name, "called")
        return lambda obj: self.getattr_(obj, name)(*args, **kwargs)

    def builtins(self, import_: Callable[..., Any]) -> dict[str, Any]:
        """The `__builtins__` of sandboxed code."""
        clock = self.clock
        bounded = clock.bounded
        names: dict[str, Any] = {
            name: safe_builtins[name]
            for name in safe_builtins
            if name not in ("setattr", "delattr", "_getattr_")
        }
        names.update({name: getattr(builtins, name) for name in _PLAIN_BUILTINS})
        names.update({name: getattr(builtins, name) for name in _EXTRA_EXCEPTIONS})

        def sequence_factory(real: Any) -> Callable[..., Any]:
            def make(*args: Any, **kwargs: Any) -> Any:
                source = args[0] if args else kwargs.get("source")
                if isinstance(source, int):
                    clock.check_size(source, f"{real.__name__}({source})")
                elif source is not None and not isinstance(source, str):
                    clock.check_items(source, f"{real.__name__}()", 1)
                    args = (bounded(source), *args[1:]) if args else args
                return real(*args, **kwargs)

            return make

        def dict_factory(*args: Any, **kwargs: Any) -> dict[Any, Any]:
            if args and not hasattr(args[0], "keys"):
                clock.check_items(args[0], "dict()", 100)
                args = (bounded(args[0]),)
            return dict(*args, **kwargs)

        def sorted_(iterable: Any, /, *, key: Any = None, reverse: bool = False) -> list[Any]:
            clock.check_items(iterable, "sorted()")
            return sorted(bounded(iterable), key=key, reverse=reverse)

        def sum_(iterable: Any, /, start: Any = 0) -> Any:
            return sum(bounded(iterable), start)

        def over_one_iterable(fn: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                if len(args) == 1:
                    args = (bounded(args[0]),)
                return fn(*args, **kwargs)

            call.__name__ = fn.__name__
            return call

        def map_(function: Any, *iterables: Any) -> Iterator[Any]:
            return map(function, *[bounded(it) for it in iterables])

        def filter_(function: Any, iterable: Any) -> Iterator[Any]:
            return filter(function, bounded(iterable))

        def zip_(*iterables: Any, strict: bool = False) -> Iterator[Any]:
            return zip(*[bounded(it) for it in iterables], strict=strict)

        def enumerate_(iterable: Any, start: int = 0) -> Iterator[Any]:
            return enumerate(bounded(iterable), start)

        def iter_(obj: Any, *sentinel: Any) -> Iterator[Any]:
            if sentinel:
                return TickingIter(iter(obj, *sentinel), clock)
            return iter(obj)

        for real in (list, tuple, set, frozenset):
            names[real.__name__] = self.shim(real)
        names["dict"] = self.shim(dict, dict_factory)
        names["bytes"] = self.shim(bytes, sequence_factory(bytes))
        names["bytearray"] = self.shim(bytearray, sequence_factory(bytearray))
        names["type"] = self.shim(type, self.type_)
        names.update(
            {
                "sorted": sorted_,
                "sum": sum_,
                "min": over_one_iterable(min),
                "max": over_one_iterable(max),
                "any": over_one_iterable(any),
                "all": over_one_iterable(all),
                "map": map_,
                "filter": filter_,
                "zip": zip_,
                "enumerate": enumerate_,
                "iter": iter_,
                "pow": self.pow_,
                "format": self.format_,
                "getattr": self.getattr_builtin,
                "hasattr": self.hasattr_,
                "setattr": self.setattr_,
                "delattr": self.delattr_,
                "dir": self.dir_,
                "__import__": import_,
                "NotImplemented": NotImplemented,
                # the guards RestrictedPython's rewritten code calls
                "_getattr_": self.getattr_,
                "_getitem_": self.getitem_,
                "_getiter_": iter,
                "_write_": self.write_,
                "_inplacevar_": self.inplacevar_,
                "_apply_": self.apply_,
                "_unpack_sequence_": self.unpack_sequence_,
                "_iter_unpack_sequence_": self.iter_unpack_sequence_,
                "_add_": self.add_,
                "_mul_": self.mul_,
                "_pow_": self.pow_,
                "_lshift_": self.lshift_,
                "_mod_": self.mod_,
                "_fmt_": self.fmt_,
                "_unpack_": self.unpack_,
                "_augitem_": self.augitem_,
                "_augattr_": self.augattr_,
            }
        )
        return names


__all__ = ["SANDBOX_MODULE", "Guards", "ModuleProxy", "ModuleTable", "TypeShim", "is_sandbox_class"]
