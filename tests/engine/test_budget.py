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


@pytest.mark.parametrize(("wall", "slice_s"), [(5.0, 0.5), (60.0, 6.0), (600.0, 10.0)])
def test_the_closing_slice_is_min_10_s_or_10_percent_and_ends_for_every_call(
    wall: float, slice_s: float
) -> None:
    now = [0.0]
    budget = Budget(BudgetLimits(max_wall_time_s=wall), UsageLedger(), clock=lambda: now[0])
    assert budget.closing_slice_s() == pytest.approx(slice_s)
    now[0] = wall  # the budget is spent: the slice starts, the same for every closing call
    assert budget.closing_time_left_s() == pytest.approx(slice_s)
    assert budget.closing_call_refusal() is None
    now[0] = wall + slice_s
    assert budget.closing_call_refusal() == "the closing slice past max_wall_time_s is over"


def test_no_wall_budget_means_no_closing_slice() -> None:
    budget = Budget(BudgetLimits(), UsageLedger())
    assert budget.closing_slice_s() is None and budget.closing_time_left_s() is None
    assert budget.closing_call_refusal() is None
