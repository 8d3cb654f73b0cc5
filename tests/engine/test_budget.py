from __future__ import annotations

import pytest

from rlmrt.engine.budget import Budget, BudgetLimits
from rlmrt.errors import BudgetExceededError
from rlmrt.observe.usage import UsageLedger


def test_wall_time_warning_then_exceeded_with_a_fake_clock() -> None:
    now = [100.0]
    warnings: list[tuple[str, str]] = []
    budget = Budget(
        BudgetLimits(max_wall_time_s=10),
        UsageLedger(),
        warn=lambda limit, msg: warnings.append((limit, msg)),
        clock=lambda: now[0],
    )
    assert budget.exceeded() is None and budget.remaining_time_s() == 10
    now[0] = 108.5
    assert budget.exceeded() is None
    assert warnings == [("max_wall_time_s", "max_wall_time_s: 8.5 of 10 used")]
    now[0] = 111
    error = budget.exceeded()
    assert isinstance(error, BudgetExceededError) and error.limit == "max_wall_time_s"
    assert budget.remaining_time_s() == 0.0
    with pytest.raises(BudgetExceededError, match="max_wall_time_s=10 reached"):
        budget.check()


def test_unlimited_budget_never_stops() -> None:
    budget = Budget(BudgetLimits(), UsageLedger())
    budget.check()
    assert budget.remaining_time_s() is None
