"""API keys: made here, shown once, stored only as their SHA-256.

A key is `rlm-` and 43 URL-safe characters (256 random bits), so its SHA-256 cannot be
reversed or guessed, and a fast hash is enough (no salt, no slow KDF: those protect
low-entropy passwords). Its first `PREFIX_CHARS` characters are kept in clear as its
visible prefix, for support ("which key is rlm-Ab3dE9xQ?") and to find the stored
candidates, whose hashes are then compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

KEY_PREFIX = "rlm-"
PREFIX_CHARS = 12  # "rlm-" and 8 random characters: 48 bits, shown in lists
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def new_key() -> str:
    """A fresh API key (shown once, never stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_prefix(key: str) -> str:
    """The visible part of a key."""
    return key[:PREFIX_CHARS]


def key_hash(key: str) -> str:
    """What is stored of a key: its SHA-256, in hex."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(stored: str, key: str) -> bool:
    """Whether `key` is the key `stored` was made from, in constant time."""
    return hmac.compare_digest(stored.encode(), key_hash(key).encode())


def looks_like_key(text: str) -> bool:
    return text.startswith(KEY_PREFIX) and len(text) > PREFIX_CHARS


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s` -> a timedelta (positive)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration: use a positive number and a unit, e.g. 30d, 12h, 90m, 2w"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
