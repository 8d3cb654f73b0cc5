"""The quality bench's task families, their split into a tuning and a held-out half, and
the seeded draw of task instances.

A family is one task shape in one data format. Each family belongs to one half: the
tuning half (`quality_tuning.py`) is what the engine may be tuned on; the held-out half
(`quality_heldout.py`) is only measured. Instances are drawn per family from a seed
stream salted with the half's name, so no tuning instance shares its seed with a
held-out one, and `--seed` draws fresh instances of both.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import quality_heldout as heldout
import quality_tuning as tuning
from quality_data import Instance

Split = Literal["tuning", "heldout"]
SPLITS: tuple[Split, ...] = ("tuning", "heldout")
MIN_SIZE, MAX_SIZE = 80_000, 1_000_000


@dataclass(frozen=True)
class Family:
    name: str
    split: Split
    make: Callable[[random.Random, int], Instance]
    shape: str  # one line for the README and --list


@dataclass(frozen=True)
class Task:
    name: str
    family: str
    split: Split
    question: str
    context: str
    answer: str


FAMILIES = {
    family.name: family
    for family in (
        Family("count", "tuning", tuning.count_task, "log lines of one level, [LEVEL] lines"),
        Family("needle", "tuning", tuning.needle_task, "one access code in filler prose"),
        Family("aggregate", "tuning", tuning.aggregate_task, "one customer's total, pipes"),
        Family("ledger", "tuning", tuning.ledger_task, "the showcase: OVERDUE invoices"),
        Family("levels", "tuning", tuning.levels_task, "near-miss count (WARN/WARNING), k=v"),
        Family("secret", "tuning", tuning.secret_task, "needle among look-alikes, prose"),
        Family("expenses", "tuning", tuning.expenses_task, "sum / max / average, CSV"),
        Family("orders", "tuning", tuning.orders_task, "conjunction with a threshold, JSONL"),
        Family("two-tables", "tuning", tuning.two_tables_task, "two-hop lookup, pipes + CSV"),
        Family("tickets", "heldout", heldout.tickets_task, "near-miss count (OPEN/REOPENED), CSV"),
        Family("events", "heldout", heldout.events_task, "most frequent category, k=v"),
        Family("access-log", "heldout", heldout.access_log_task, "distinct count, Apache log"),
        Family("auth-log", "heldout", heldout.auth_log_task, "date window, syslog auth.log"),
        Family("stock", "heldout", heldout.stock_task, "latest of shuffled updates, JSONL"),
        Family("source", "heldout", heldout.source_task, "functions taking an argument, Python"),
    )
}


def make_task(family: Family, size: int, seed: int, index: int) -> Task:
    """Instance `index` of `family` at `size` characters, drawn from `seed`."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size {size} is outside {MIN_SIZE:,}-{MAX_SIZE:,} characters")
    rng = random.Random(f"{family.split}/{family.name}/{seed}/{index}/{size}")
    question, context, answer = family.make(rng, size)
    name = f"{family.name}-{size // 1000}k-{index}"
    return Task(name, family.name, family.split, question, context, answer)


def make_tasks(families: list[Family], sizes: list[int], seed: int, per_family: int) -> list[Task]:
    """`per_family` instances of each family, their sizes taken in turn from `sizes`."""
    return [
        make_task(family, sizes[index % len(sizes)], seed, index)
        for index in range(per_family)
        for family in families
    ]


def select_families(names: str | None, split: Split | Literal["all"]) -> list[Family]:
    """The families named (comma-separated; all when None) that belong to `split`."""
    chosen = list(FAMILIES.values())
    if names:
        unknown = sorted(set(names.split(",")) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
        chosen = [FAMILIES[name] for name in names.split(",")]
    return [family for family in chosen if split in ("all", family.split)]
