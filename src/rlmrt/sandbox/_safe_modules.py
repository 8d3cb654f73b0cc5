"""The import allow-list of the local sandbox and its read-only module proxies.

Sandboxed code never holds a real module object. `import json` gives a `ModuleProxy`
that holds only the vetted attributes of `json` (copied out when the proxy is built),
so there is no attribute that leads back to the module, its globals or the modules
it imported (`pathlib.os`, `typing.sys`, `random._os` ...). Functions whose
behaviour reaches outside the sandbox are left out (`csv.field_size_limit`,
`typing.get_type_hints`, which evals strings); functions that can build huge values
in one C call are wrapped with size checks (`zlib.decompress`, `math.factorial`).
"""

from __future__ import annotations

import functools
import importlib
import math
import random
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmrt.sandbox._guards import Guards

__all__ = ["ALLOWED_MODULES", "ModuleProxy", "ModuleTable"]


class ModuleProxy:
    """A read-only stand-in for an allowed module."""

    __slots__ = ("__attrs", "__name")

    def __init__(self, name: str, attrs: dict[str, Any]) -> None:
        object.__setattr__(self, "_ModuleProxy__name", name)
        object.__setattr__(self, "_ModuleProxy__attrs", attrs)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("module proxies cannot be subclassed")

    def __getattr__(self, name: str) -> Any:
        attrs: dict[str, Any] = object.__getattribute__(self, "_ModuleProxy__attrs")
        if not name.startswith("_") and name in attrs:
            return attrs[name]
        modname = object.__getattribute__(self, "_ModuleProxy__name")
        raise AttributeError(f"module {modname!r} has no attribute {name!r} in the sandbox")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("sandbox modules are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("sandbox modules are read-only")

    def __dir__(self) -> list[str]:
        return sorted(object.__getattribute__(self, "_ModuleProxy__attrs"))

    def __repr__(self) -> str:
        return f"<module {object.__getattribute__(self, '_ModuleProxy__name')!r} (sandboxed)>"

    def __reduce__(self) -> Any:
        raise TypeError("sandbox modules cannot be pickled")

    def __copy__(self) -> ModuleProxy:
        return self

    def __deepcopy__(self, memo: Any) -> ModuleProxy:
        return self


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# module -> names offered (None: the module's __all__, or its public names for C modules)
ALLOWED_MODULES: dict[str, tuple[str, ...] | None] = {
    "base64": None,
    "binascii": None,
    "bisect": ("bisect", "bisect_left", "bisect_right", "insort", "insort_left", "insort_right"),
    "collections": None,
    "collections.abc": None,
    "copy": None,
    "csv": _names(
        "QUOTE_ALL QUOTE_MINIMAL QUOTE_NONE QUOTE_NONNUMERIC Dialect DictReader DictWriter"
        " Error Sniffer excel excel_tab unix_dialect get_dialect list_dialects reader writer"
    ),
    "dataclasses": _names(
        "dataclass field Field FrozenInstanceError InitVar KW_ONLY MISSING fields asdict"
        " astuple replace is_dataclass"
    ),
    "datetime": None,
    "decimal": _names(
        "Decimal DecimalException Clamped DivisionByZero Inexact InvalidOperation Overflow"
        " Rounded Subnormal Underflow FloatOperation getcontext localcontext ROUND_CEILING"
        " ROUND_DOWN ROUND_FLOOR ROUND_HALF_DOWN ROUND_HALF_EVEN ROUND_HALF_UP ROUND_UP"
        " ROUND_05UP"
    ),
    "difflib": None,
    "enum": _names("Enum IntEnum StrEnum Flag IntFlag auto unique"),
    "fractions": None,
    "functools": _names("reduce partial lru_cache cache cmp_to_key total_ordering wraps"),
    "hashlib": _names(
        "md5 sha1 sha224 sha256 sha384 sha512 blake2b blake2s sha3_224 sha3_256 sha3_384"
        " sha3_512 shake_128 shake_256 new algorithms_guaranteed algorithms_available"
    ),
    "heapq": None,
    "html": ("escape", "unescape"),
    "io": ("StringIO", "BytesIO"),
    "itertools": None,
    "json": None,
    "math": None,
    "operator": None,
    "pprint": ("pformat", "pprint", "pp", "isreadable", "isrecursive", "saferepr"),
    "random": _names(
        "Random random uniform randint randrange choice choices shuffle sample seed gauss"
        " normalvariate lognormvariate expovariate vonmisesvariate gammavariate betavariate"
        " paretovariate weibullvariate triangular getrandbits randbytes getstate setstate"
    ),
    "re": None,
    "statistics": None,
    "string": None,
    "textwrap": None,
    "time": _names(
        "time time_ns perf_counter perf_counter_ns monotonic monotonic_ns gmtime localtime strftime"
    ),
    "typing": None,
    "unicodedata": None,
    "uuid": _names(
        "UUID uuid3 uuid4 uuid5 NAMESPACE_DNS NAMESPACE_URL NAMESPACE_OID NAMESPACE_X500"
    ),
    "zlib": _names(
        "compress decompress crc32 adler32 error compressobj MAX_WBITS DEFLATED DEF_BUF_SIZE"
        " DEF_MEM_LEVEL Z_BEST_COMPRESSION Z_BEST_SPEED Z_DEFAULT_COMPRESSION"
    ),
}

# names never offered even when a module lists them in __all__
_DENIED: dict[str, frozenset[str]] = {
    "re": frozenset({"purge", "template"}),
    "string": frozenset({"Formatter"}),
    "typing": frozenset(
        {"get_type_hints", "get_overloads", "clear_overloads", "reveal_type", "ForwardRef"}
    ),
    "datetime": frozenset({"datetime_CAPI"}),
    "difflib": frozenset({"HtmlDiff"}),
    "operator": frozenset({"attrgetter", "methodcaller"}),  # replaced below
}

_MAX_FACTORIAL = 100_000
_MAX_DECIMAL_PREC = 100_000


def _public_names(module: types.ModuleType, listed: tuple[str, ...] | None) -> Iterable[str]:
    if listed is not None:
        return listed
    exported = getattr(module, "__all__", None)
    if exported is not None:
        return [str(n) for n in exported]
    return [n for n in dir(module) if not n.startswith("_")]


def _freeze(value: Any) -> Any:
    """Module-level containers are shared with the host: hand out immutable copies."""
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return types.MappingProxyType(dict(value))
    return value


class ModuleTable:
    """The proxies of one sandbox, built on first import.

    Built per sandbox because some replacements are bound to it: the `random`
    functions use a private `Random` instance (seeding it does not touch the host's
    random state) and `pprint.pprint` writes to the sandbox's captured output.
    """

    def __init__(self, guards: Guards) -> None:
        self._guards = guards
        self._proxies: dict[str, ModuleProxy] = {}
        self._random = _make_random_class(guards)()

    def import_(
        self,
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> ModuleProxy:
        """The sandbox's `__import__`."""
        if level != 0:
            raise ImportError("relative imports are not available in the sandbox")
        if not isinstance(name, str) or name not in ALLOWED_MODULES:
            allowed = ", ".join(sorted(ALLOWED_MODULES))
            raise ImportError(
                f"module {name!r} is not available in the sandbox; allowed modules: {allowed}"
            )
        top = name.partition(".")[0]
        return self.proxy(name if fromlist else top)

    def proxy(self, name: str) -> ModuleProxy:
        cached = self._proxies.get(name)
        if cached is None:
            cached = self._proxies[name] = ModuleProxy(name, self._build(name))
        return cached

    def proxy_for(self, module: types.ModuleType) -> ModuleProxy | None:
        """The proxy of a real module met as an attribute value, if it is allowed."""
        name = getattr(module, "__name__", None)
        if isinstance(name, str) and name in ALLOWED_MODULES:
            return self.proxy(name)
        return None

    def _build(self, name: str) -> dict[str, Any]:
        module = importlib.import_module(name)
        denied = _DENIED.get(name, frozenset())
        attrs: dict[str, Any] = {}
        for attr in _public_names(module, ALLOWED_MODULES[name]):
            if attr.startswith("_") or attr in denied or not hasattr(module, attr):
                continue
            value = getattr(module, attr)
            if isinstance(value, types.ModuleType):
                continue
            attrs[attr] = _freeze(value)
        for sub in ALLOWED_MODULES:
            prefix, _, rest = sub.rpartition(".")
            if prefix == name:
                attrs[rest] = self.proxy(sub)
        attrs.update(self._overrides(name, attrs))
        return attrs

    def _overrides(self, name: str, attrs: dict[str, Any]) -> dict[str, Any]:
        g = self._guards
        clock = g.clock
        if name == "random":
            return {
                n: (getattr(self._random, n) if n != "Random" else type(self._random))
                for n in attrs
            }
        if name == "itertools":
            return {n: _IterFactory(v, g) for n, v in attrs.items() if callable(v)}
        if name == "pprint":
            return {"pprint": g.pprint, "pp": g.pprint}
        if name == "operator":
            return {
                "attrgetter": g.attrgetter,
                "methodcaller": g.methodcaller,
                "setitem": g.setitem,
                "delitem": g.delitem,
                "mul": g.mul_,
                "imul": g.mul_,
                "pow": g.pow_,
                "ipow": g.pow_,
                "lshift": g.lshift_,
                "ilshift": g.lshift_,
                "mod": g.mod_,
                "imod": g.mod_,
            }
        if name == "functools":
            reduce = functools.reduce

            def bounded_reduce(function: Callable[..., Any], iterable: Any, *initial: Any) -> Any:
                return reduce(function, clock.bounded(iterable), *initial)

            return {"reduce": bounded_reduce}
        if name == "collections":
            return {
                "Counter": g.shim(attrs["Counter"], bounded_args=True),
                "deque": g.shim(attrs["deque"], bounded_args=True),
            }
        if name == "math":
            return _math_overrides(g)
        if name == "zlib":
            return {"decompress": _make_decompress(g)}
        if name == "decimal":
            return {"localcontext": _bounded_localcontext}
        if name == "typing":
            get_origin = attrs["get_origin"]
            # typing.get_origin(typing.Type[int]) is the real `type`, whose 3-argument
            # form the sandbox does not hand out
            return {"get_origin": lambda tp: g.as_seen(get_origin(tp))}
        return {}


def _math_overrides(g: Guards) -> dict[str, Any]:
    def capped(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(n: Any, *args: Any) -> Any:
            if isinstance(n, int) and n > _MAX_FACTORIAL:
                raise MemoryError(
                    f"math.{fn.__name__}() is limited to n <= {_MAX_FACTORIAL} in the sandbox"
                )
            return fn(n, *args)

        return call

    def prod(iterable: Any, *, start: Any = 1) -> Any:
        result = start
        for item in g.clock.bounded(iterable):
            result = g.mul_(result, item)
        return result

    return {
        "factorial": capped(math.factorial),
        "comb": capped(math.comb),
        "perm": capped(math.perm),
        "prod": prod,
    }


def _make_decompress(g: Guards) -> Callable[..., bytes]:
    import zlib

    def decompress(data: Any, wbits: int = zlib.MAX_WBITS, bufsize: int = 0) -> bytes:
        limit = g.clock.rss_limit or (1 << 62)
        d = zlib.decompressobj(wbits)
        out = d.decompress(data, limit)
        if d.unconsumed_tail:
            g.clock.check_size(limit + 1, "zlib.decompress() output")
        return out + d.flush()

    return decompress


def _bounded_localcontext(ctx: Any = None, **kwargs: Any) -> Any:
    import decimal

    if ctx is not None and not isinstance(ctx, decimal.Context):
        raise TypeError("localcontext() expects a decimal context")
    prec = kwargs.get("prec", (ctx or decimal.getcontext()).prec)
    if not isinstance(prec, int) or prec > _MAX_DECIMAL_PREC:
        raise MemoryError(f"decimal precision is limited to {_MAX_DECIMAL_PREC} in the sandbox")
    if kwargs:  # what localcontext(**kwargs) does on 3.11+, for 3.10 as well
        ctx = (ctx or decimal.getcontext()).copy()
        for name, value in kwargs.items():
            if not hasattr(ctx, name) or name.startswith("_"):
                raise TypeError(f"'{name}' is an invalid keyword argument for this function")
            setattr(ctx, name, value)
    return decimal.localcontext(ctx)


def _make_random_class(g: Guards) -> type[random.Random]:
    class Random(random.Random):
        """random.Random whose bulk outputs are checked against the memory limit."""

        def getrandbits(self, k: int) -> int:
            g.clock.check_size(k / 8, "getrandbits()")
            return super().getrandbits(k)

        def randbytes(self, n: int) -> bytes:
            g.clock.check_size(n, "randbytes()")
            return super().randbytes(n)

    Random.__module__ = "random"
    return Random


class _IterFactory:
    """An itertools callable whose iterators tick (they may be infinite or huge)."""

    __slots__ = ("_fn", "_guards")

    def __init__(self, fn: Callable[..., Any], guards: Guards) -> None:
        self._fn = fn
        self._guards = guards

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bounded = self._guards.clock.bounded
        result = self._fn(*(bounded(a) for a in args), **kwargs)
        if isinstance(result, tuple):  # itertools.tee
            return tuple(bounded(r) for r in result)
        return bounded(result)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._fn, name)
        return _IterFactory(value, self._guards) if callable(value) else value

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._fn) if isinstance(self._fn, type) else False

    def __repr__(self) -> str:
        return f"<sandboxed {getattr(self._fn, '__qualname__', 'callable')}>"
