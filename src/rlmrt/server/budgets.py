"""USD per UTC day budgets of keys and tenants (`[server] key_daily_usd`,
`tenant_daily_usd`, or their own: `rlm keys create --daily-usd`, `rlm tenants set
--daily-usd`; 0: none).

What a key or tenant spent today is the sum of its runs' recorded costs (the engine's
usage at the configured prices), read from the shared database, so every replica sees
the same spending. Spent: the request gets a 429 naming the budget. Not yet spent: the
run starts with the tightest budget's remainder as its `max_cost_usd` (the engine's own
budget, checked before each model call), so a budget reached mid-run ends that run as
partial; its stop reason then names the budget ("key_daily_usd", "tenant_daily_usd").
Runs at the same time each may spend the remainder: a budget holds to within the runs
under way when it is reached.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from rlmrt.config import RLMConfig
from rlmrt.observe.costs import day_start
from rlmrt.server.ratelimits import Scope
from rlmrt.server.storage import Store

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class DailyBudget:
    """One scope's budget of today and what it spent."""

    scope: Scope
    spent_usd: float

    @property
    def limit_usd(self) -> float:
        return self.scope.daily_usd

    @property
    def left_usd(self) -> float:
        return max(0.0, self.limit_usd - self.spent_usd)

    @property
    def stop_reason(self) -> str:
        """What a run this budget ended says it stopped for."""
        return f"{self.scope.kind}_daily_usd"


class BudgetSpent(Exception):
    """A request whose key or tenant has spent its budget of the day."""

    def __init__(self, budget: DailyBudget, now: float | None = None) -> None:
        self.budget = budget
        now = time.time() if now is None else now
        self.retry_after_s = max(1, math.ceil(day_start(now) + DAY_S - now))
        super().__init__(
            f"budget exceeded: the daily budget of {budget.scope.name}"
            f" ({budget.limit_usd:g} USD) is spent ({budget.spent_usd:.4f} USD today, UTC);"
            f" it renews at 00:00 UTC, in {self.retry_after_s} s"
        )


async def daily_budgets(
    store: Store, scopes: Sequence[Scope], now: float | None = None
) -> tuple[DailyBudget, ...]:
    """The budgets of `scopes` (a key's and its tenant's) that are set, with what each
    spent today (UTC); nothing is read when none is set."""
    budgeted = [scope for scope in scopes if scope.daily_usd > 0]
    if not budgeted:
        return ()
    ids = {scope.kind: scope.id for scope in scopes}
    since = datetime.fromtimestamp(day_start(now), timezone.utc)
    spent = await store.spent_since(since, key_id=ids["key"], tenant_id=ids["tenant"])
    return tuple(
        DailyBudget(scope, spent.key_usd if scope.kind == "key" else spent.tenant_usd)
        for scope in budgeted
    )


def check_budgets(budgets: Sequence[DailyBudget], now: float | None = None) -> DailyBudget | None:
    """The budget a run may spend at most (the one with the least left; None: no
    budget); raises `BudgetSpent` when one has nothing left."""
    for budget in budgets:
        if budget.left_usd <= 0:
            raise BudgetSpent(budget, now)
    return min(budgets, key=lambda budget: budget.left_usd, default=None)


def capped(config: RLMConfig, budget: DailyBudget | None) -> RLMConfig | None:
    """`config` whose run-tree cost cap is at most what `budget` has left (None: the
    config's own cap is tighter, or there is no budget: run as configured)."""
    if budget is None:
        return None
    own = config.budget.max_cost_usd
    if own is not None and own <= budget.left_usd:
        return None
    limits = config.budget.model_copy(update={"max_cost_usd": budget.left_usd})
    return config.model_copy(update={"budget": limits})
