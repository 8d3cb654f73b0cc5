"""Lazy registries: a short name maps to "module:attribute", imported on first use.

One registry per kind of backend. CLI choices, config validation and the
"Did you mean ...?" errors all come from here.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Generic, TypeVar

from rlmrt.errors import ConfigError

T = TypeVar("T")


class LazyRegistry(Generic[T]):
    def __init__(self, what: str, entries: Mapping[str, str]) -> None:
        self.what = what
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def check(self, name: str) -> str:
        """Return `name` if known, else raise ConfigError with a suggestion."""
        if name in self._entries:
            return name
        close = difflib.get_close_matches(name, self._entries, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown {self.what} {name!r}; choose one of: {', '.join(self.names())}.{hint}"
        )

    def load(self, name: str) -> type[T]:
        target = self._entries[self.check(name)]
        module_name, _, attr = target.partition(":")
        loaded: type[T] = getattr(importlib.import_module(module_name), attr)
        return loaded
