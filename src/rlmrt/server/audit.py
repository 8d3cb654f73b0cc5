"""The audit log's chain: each record holds the previous record's hash, and its own
hash is the SHA-256 of its canonical JSON (sorted keys, no spaces), so editing,
deleting or reordering a stored record breaks the chain where it happened.

Records say who (tenant, a key's visible prefix or "cli"), what, when and from where;
never a key, a secret or a prompt: callers give only prefixes, ids and counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rlmrt.server.models import AuditRecord

GENESIS = "0" * 64  # the previous hash of the first record
CLI_ACTOR = "cli"


@dataclass(frozen=True, slots=True)
class Entry:
    """A record to append, before the chain gives it its place (seq, time, hashes)."""

    action: str
    actor: str = CLI_ACTOR
    tenant_id: str | None = None
    target: str | None = None
    client: str | None = None
    detail: Mapping[str, object] | None = None


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_fields(record: AuditRecord) -> dict[str, Any]:
    """What a record's hash covers: every field but the hash itself."""
    return {
        "seq": record.seq,
        "at": record.at,
        "action": record.action,
        "actor": record.actor,
        "tenant_id": record.tenant_id,
        "target": record.target,
        "client": record.client,
        "detail": json.loads(record.detail),
        "prev_hash": record.prev_hash,
    }


def record_hash(record: AuditRecord) -> str:
    return hashlib.sha256(canonical(record_fields(record)).encode()).hexdigest()


def sealed(record: AuditRecord) -> AuditRecord:
    """`record` with its hash set (its other fields, `prev_hash` included, are set)."""
    record.hash = record_hash(record)
    return record


def detail_text(detail: Mapping[str, Any] | None) -> str:
    return canonical(dict(detail or {}))


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first record that does not fit the chain, and how."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.reason}"


def first_break(records: Iterable[AuditRecord]) -> tuple[int, ChainBreak | None]:
    """Walk `records` in order: how many there are and the first break (None: intact)."""
    previous = GENESIS
    previous_seq: int | None = None
    count = 0
    for record in records:
        count += 1
        if record.prev_hash != previous:
            after = "the start" if previous_seq is None else f"record {previous_seq}"
            return count, ChainBreak(
                record.seq,
                f"does not follow {after} (its previous hash differs: a record before it"
                " was deleted, changed or moved)",
            )
        if record_hash(record) != record.hash:
            return count, ChainBreak(record.seq, "was changed (its hash does not match it)")
        previous, previous_seq = record.hash, record.seq
    return count, None
