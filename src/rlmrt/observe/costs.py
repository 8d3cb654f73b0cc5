"""What runs cost, read from their trajectory files: per call, then added up by model,
day (UTC), project or run.

Files are streamed line by line and only the lines of finished model calls are parsed,
so a folder of large trajectories is read without loading any of them whole. The
costs are the ones the engine recorded on each call (LiteLLM's bundled price map, or
`[llm] prices`), so they match what runs reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rlmrt.errors import BudgetExceededError, ConfigError, UsageError
from rlmrt.events import ModelCallFinished
from rlmrt.observe.trajectory import SUFFIX, parse_line

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig

GroupBy = Literal["model", "day", "project", "run"]
GROUPS: tuple[GroupBy, ...] = ("model", "day", "project", "run")
_MARK = b'"kind": "model_call_finished"'
# the CallCost fields a group adds up (its CostRow has the same names)
_SUMMED = (
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


@dataclass(frozen=True, slots=True)
class CallCost:
    """One finished model call."""

    project: str
    run_id: str
    model: str
    ts: float
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_read_tokens: int = 0  # parts of input_tokens
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0  # part of output_tokens

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.ts, timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class CostRow:
    """The calls of one group."""

    key: str
    calls: int
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def to_dict(self) -> dict[str, str | int | float]:
        return {
            "key": self.key,
            "calls": self.calls,
            "runs": self.runs,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": self.cost_usd,
        }


def call_costs(folders: Mapping[str, Path], *, since: float | None = None) -> Iterator[CallCost]:
    """The finished model calls in the trajectories of `folders` (project -> folder),
    from `since` (a Unix time) on."""
    for project, folder in folders.items():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            yield from _file_costs(project, path, since)


def _file_costs(project: str, path: Path, since: float | None) -> Iterator[CallCost]:
    try:
        if since is not None and path.stat().st_mtime < since:
            return  # last written before `since`: none of its calls count
        with path.open("rb") as file:
            for line in file:
                if _MARK not in line:
                    continue
                event = parse_line(line)
                if not isinstance(event, ModelCallFinished):
                    continue
                if since is not None and event.ts < since:
                    continue
                yield CallCost(
                    project=project,
                    run_id=event.run_id,
                    model=event.model,
                    ts=event.ts,
                    input_tokens=event.input_tokens,
                    output_tokens=event.output_tokens,
                    cost_usd=event.cost_usd,
                    cache_read_tokens=event.cache_read_tokens,
                    cache_write_tokens=event.cache_write_tokens,
                    reasoning_tokens=event.reasoning_tokens,
                )
    except OSError:
        return  # removed while being read: its calls are gone


def group_costs(costs: Iterable[CallCost], by: GroupBy) -> list[CostRow]:
    """Totals per group, the most expensive first (by day: the newest day first)."""
    sums: dict[str, dict[str, float]] = {}
    calls: dict[str, int] = {}
    runs: dict[str, set[str]] = {}
    for call in costs:
        key = _key(call, by)
        row = sums.setdefault(key, dict.fromkeys(_SUMMED, 0))
        for name in _SUMMED:
            row[name] += getattr(call, name)
        calls[key] = calls.get(key, 0) + 1
        runs.setdefault(key, set()).add(call.run_id)
    rows = [
        CostRow(
            key=key,
            calls=calls[key],
            runs=len(runs[key]),
            cost_usd=row["cost_usd"],
            **{name: int(row[name]) for name in _SUMMED if name != "cost_usd"},
        )
        for key, row in sums.items()
    ]
    if by == "day":
        return sorted(rows, key=lambda r: r.key, reverse=True)
    return sorted(rows, key=lambda r: (-r.cost_usd, r.key))


def _key(call: CallCost, by: GroupBy) -> str:
    if by == "model":
        return call.model
    if by == "day":
        return call.day
    if by == "project":
        return call.project or "(none)"
    return call.run_id


def day_start(now: float | None = None) -> float:
    """The Unix time the current UTC day began."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def month_start(now: float | None = None) -> float:
    """The Unix time the current UTC calendar month began."""
    moment = datetime.fromtimestamp(day_start(now), timezone.utc)
    return moment.replace(day=1).timestamp()


@dataclass(frozen=True, slots=True)
class ProjectSpend:
    """What a project's recorded runs spent before a run starts, per budget period."""

    today_usd: float = 0.0
    month_usd: float = 0.0


def project_spend(folder: Path, now: float | None = None) -> ProjectSpend:
    """USD the runs recorded in `folder` spent this UTC day and this UTC month (one
    pass over the month's calls)."""
    day = day_start(now)
    today = month = 0.0
    for call in call_costs({"": folder}, since=month_start(now)):
        month += call.cost_usd
        if call.ts >= day:
            today += call.cost_usd
    return ProjectSpend(today_usd=today, month_usd=month)


def spent_today(folder: Path, now: float | None = None) -> float:
    """USD the runs recorded in `folder` spent since the UTC day began."""
    return project_spend(folder, now).today_usd


def parse_since(text: str, now: float | None = None) -> float:
    """`7d`, `12h`, `30m`, `2w` ago, or a date (`2025-01-31`, UTC), as a Unix time."""
    now = time.time() if now is None else now
    text = text.strip()
    unit = _UNITS.get(text[-1:].lower())
    if unit is not None and text[:-1].isdigit():
        return now - int(text[:-1]) * unit
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise UsageError(
            f"cannot read --since {text!r}: use a span such as 7d, 12h, 30m, 2w or a date"
            " such as 2025-01-31"
        ) from None
    return day.timestamp()


def check_project_budgets(config: RLMConfig, now: float | None = None) -> ProjectSpend:
    """What the project spent this day and month (nothing is read when neither
    `[budget] daily_usd` nor `monthly_usd` is set); raises `BudgetExceededError` when
    that already reaches a budget, so no run starts."""
    budget = config.budget
    if budget.daily_usd is None and budget.monthly_usd is None:
        return ProjectSpend()
    named = "daily_usd" if budget.daily_usd is not None else "monthly_usd"
    if not config.trajectory.save:
        raise ConfigError(
            f"[budget] {named} needs trajectories ([trajectory] save = true): the"
            " project's spending is read from them"
        )
    spend = project_spend(config.trajectory.dir, now)
    project = config.observe.project
    whose = f"project {project}" if project else f"the runs in {config.trajectory.dir}"
    for name, limit, spent, period, until in (
        ("daily_usd", budget.daily_usd, spend.today_usd, "today (UTC)", "tomorrow"),
        ("monthly_usd", budget.monthly_usd, spend.month_usd, "this month (UTC)", "next month"),
    ):
        if limit is not None and spent >= limit:
            raise BudgetExceededError(
                name,
                f"{name.split('_')[0]} budget exhausted: [budget] {name}={limit:g} and {whose}"
                f" spent {spent:.4f} USD {period}; no run starts until {until} or a higher"
                " budget",
            )
    return spend
