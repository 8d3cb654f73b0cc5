"""Host-side budgets of one run tree.

One `Budget` is shared by every run in the tree. It reads the tree's usage from the
`UsageLedger` (which is fed by events), so a child's spending is the parent's
spending, and a child simply draws on whatever the tree has left.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rlmrt.config import BudgetLimits
from rlmrt.errors import BudgetExceededError
from rlmrt.observe.costs import ProjectSpend
from rlmrt.observe.usage import UsageLedger

WARN_FRACTION = 0.8
# The closing best-answer call, made after a limit stopped the run, may run this long
# past the wall-time budget: min(10 s, 10% of the budget).
CLOSING_SLICE_MAX_S = 10.0
CLOSING_SLICE_FRACTION = 0.1


class Budget:
    """Checks the tree-wide limits before each model call and sub-call."""

    def __init__(
        self,
        limits: BudgetLimits,
        ledger: UsageLedger,
        *,
        warn: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        spent_before: ProjectSpend | None = None,
    ) -> None:
        """`spent_before`: what the project's other runs spent this day and month, for
        `daily_usd` and `monthly_usd`."""
        self.limits = limits
        self._spent_before = spent_before or ProjectSpend()
        self._ledger = ledger
        self._clock = clock
        self._started = clock()
        self._warn = warn
        self._warned: set[str] = set()
        self.tool_calls = 0

    def count_tool_call(self) -> None:
        """Count one tool call; a `BudgetExceededError` when `max_tool_calls` is spent."""
        limit = self.limits.max_tool_calls
        if limit is not None and self.tool_calls >= limit:
            raise BudgetExceededError(
                "max_tool_calls",
                f"budget exhausted: max_tool_calls={limit} reached (used {self.tool_calls})",
            )
        self.tool_calls += 1

    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def remaining_time_s(self) -> float | None:
        if self.limits.max_wall_time_s is None:
            return None
        return max(0.0, self.limits.max_wall_time_s - self.elapsed_s())

    def closing_slice_s(self) -> float | None:
        """Wall seconds the closing best-answer call gets past the budget (None: no
        wall-time budget, so no bound but the request timeout)."""
        if self.limits.max_wall_time_s is None:
            return None
        return min(CLOSING_SLICE_MAX_S, CLOSING_SLICE_FRACTION * self.limits.max_wall_time_s)

    def closing_time_left_s(self) -> float | None:
        """Seconds left for a closing call: until the slice past the budget ends, the
        same moment for every closing call of the tree (None: no wall-time budget)."""
        slice_s = self.closing_slice_s()
        if self.limits.max_wall_time_s is None or slice_s is None:
            return None
        return self.limits.max_wall_time_s + slice_s - self.elapsed_s()

    def output_tokens_left(self) -> int | None:
        """Output tokens the tree may still spend (None: no budget)."""
        if self.limits.max_output_tokens is None:
            return None
        return max(0, self.limits.max_output_tokens - self._ledger.total().output_tokens)

    def cost_left_usd(self) -> float | None:
        """USD the tree may still spend (None: no budget)."""
        if self.limits.max_cost_usd is None:
            return None
        return max(0.0, self.limits.max_cost_usd - self._ledger.total().cost_usd)

    def closing_call_refusal(self) -> str | None:
        """Why the closing call is not made, or None to make it: a token or cost limit
        is reached (a call now could only overspend it), or the closing slice is over."""
        left = self.closing_time_left_s()
        if left is not None and left <= 0:
            return "the closing slice past max_wall_time_s is over"
        used = self._ledger.total()
        for name, value, limit in (
            ("max_input_tokens", used.input_tokens, self.limits.max_input_tokens),
            ("max_output_tokens", used.output_tokens, self.limits.max_output_tokens),
            ("max_cost_usd", used.cost_usd, self.limits.max_cost_usd),
        ):
            if limit is not None and value >= limit:
                return f"{name} is spent"
        return None

    def _readings(self) -> list[tuple[str, float, float | None]]:
        used = self._ledger.total()
        return [
            ("max_model_calls", used.model_calls, self.limits.max_model_calls),
            ("max_tool_calls", self.tool_calls, self.limits.max_tool_calls),
            ("max_input_tokens", used.input_tokens, self.limits.max_input_tokens),
            ("max_output_tokens", used.output_tokens, self.limits.max_output_tokens),
            ("max_cost_usd", used.cost_usd, self.limits.max_cost_usd),
            ("max_wall_time_s", self.elapsed_s(), self.limits.max_wall_time_s),
            ("daily_usd", self._spent_before.today_usd + used.cost_usd, self.limits.daily_usd),
            (
                "monthly_usd",
                self._spent_before.month_usd + used.cost_usd,
                self.limits.monthly_usd,
            ),
        ]

    def exceeded(self) -> BudgetExceededError | None:
        """The first limit reached, as an error to raise or report; None if all is well."""
        for name, value, limit in self._readings():
            if limit is None:
                continue
            if value >= limit:
                return BudgetExceededError(
                    name, f"budget exhausted: {name}={limit:g} reached (used {value:g})"
                )
            if value >= WARN_FRACTION * limit and name not in self._warned:
                self._warned.add(name)
                if self._warn is not None:
                    self._warn(name, f"{name}: {value:g} of {limit:g} used")
        return None

    def check(self) -> None:
        error = self.exceeded()
        if error is not None:
            raise error
