"""Every family's answer recomputed from the question's words and the context alone.

The generators count as they write; these functions parse what was written (csv, json,
ast, regular expressions over the lines) and take their parameters from the question
text, so a generator whose bookkeeping, question or format drifts fails `--check`.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from quality_tasks import MAX_SIZE, MIN_SIZE, Family, Task, make_task

CHECK_SIZES = (MIN_SIZE, 100_000, 300_000, MAX_SIZE)
_KV = re.compile(r'(\w+)=("[^"]*"|\S+)')


def _words(pattern: str, question: str) -> tuple[str, ...]:
    found = re.search(pattern, question)
    if found is None:
        raise AssertionError(f"question {question!r} does not match {pattern!r}")
    return found.groups()


def _only(values: list[str], what: str) -> str:
    if len(values) != 1:
        raise AssertionError(f"{len(values)} candidates for {what}: {values[:5]}")
    return values[0]


def _key_values(line: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in _KV.findall(line)}


def count(question: str, context: str) -> str:
    (level,) = _words(r"level (\w+) \(", question)
    return str(sum(f"[{level}]" in line.split(" ", 2)[1] for line in context.splitlines()))


def needle(question: str, context: str) -> str:
    (vault,) = _words(r"for vault (\w+)\?", question)
    return _only(re.findall(rf"access code for vault {vault} is (\S+)\. ", context), "the code")


def aggregate(question: str, context: str) -> str:
    customer, status = _words(r"invoices of (.+) whose status is (\w+)\?", question)
    total = 0
    for line in context.splitlines():
        fields = dict(part.split(": ", 1) for part in line.split(" | ")[2:])
        if fields["customer"] == customer and fields["status"] == status:
            total += int(fields["amount"].removesuffix(" USD"))
    return str(total)


def ledger(question: str, context: str) -> str:
    (status,) = _words(r"status (\w+)\?$", question)
    rows = [line.split(" | ") for line in context.splitlines() if line.startswith("INV-")]
    assert all(len(row) == 6 for row in rows), "a ledger row without six fields"
    return str(sum(row[5] == status for row in rows))


def levels(question: str, context: str) -> str:
    (level,) = _words(r"level (\w+)\?$", question)
    return str(sum(_key_values(line)["level"] == level for line in context.splitlines()))


def secret(question: str, context: str) -> str:
    noun, place = _words(r"What is the (.+) for the (\w+ \w+)\?", question)
    found = re.findall(rf"\b[Tt]he {re.escape(noun)} for the {place} is ([\w-]+)\.", context)
    return _only(found, f"the {noun} for the {place}")


def expenses(question: str, context: str) -> str:
    category, department = _words(
        r"(?:total of the|largest single|average) ([a-z ]+) expenses? of the (\w+) department",
        question,
    )
    amounts = [
        Decimal(row["amount_eur"])
        for row in csv.DictReader(io.StringIO(context))
        if row["department"] == department and row["category"] == category
    ]
    if "total" in question:
        value = sum(amounts, Decimal(0))
    elif "largest" in question:
        value = max(amounts)
    else:
        value = sum(amounts, Decimal(0)) / len(amounts)
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def orders(question: str, context: str) -> str:
    records = [json.loads(line) for line in context.splitlines()]
    if "more than" in question:
        status, items = _words(r"How many (\w+) orders had more than (\d+) items\?", question)
        hits = [r for r in records if r["status"] == status and r["items"] > int(items)]
    elif "channel" in question:
        channel, above = _words(r"through the (\w+) channel had a total above (\d+) ", question)
        hits = [r for r in records if r["channel"] == channel and r["total_eur"] > int(above)]
    else:
        status, above = _words(r"How many (\w+) express orders had a total above (\d+) ", question)
        hits = [
            r
            for r in records
            if r["status"] == status and r["express"] and r["total_eur"] > int(above)
        ]
    return str(len(hits))


def two_tables(question: str, context: str) -> str:
    (order,) = _words(r"order (ORD-\d+)\?", question)
    orders = re.findall(rf"^{order} \| (C-\d+) \|", context, re.M)
    customer = _only(orders, "the order's customer")
    rows = [row for row in csv.reader(io.StringIO(context)) if row and row[0] == customer]
    if len(rows) != 1:
        raise AssertionError(f"{len(rows)} rows for customer {customer}")
    _, name, city, _ = rows[0]
    return city if question.startswith("In which city") else name


def tickets(question: str, context: str) -> str:
    (status,) = _words(r"status ([\w-]+)\?$", question)
    return str(sum(row["status"] == status for row in csv.DictReader(io.StringIO(context))))


def events(question: str, context: str) -> str:
    (event,) = _words(r"the most (\w+) events\?", question)
    cities = Counter(
        kv["city"] for kv in map(_key_values, context.splitlines()) if kv["event"] == event
    )
    (first, n1), (_, n2) = cities.most_common(2)
    assert n1 > n2, f"a tie for the most {event} events"
    return first


def access_log(question: str, context: str) -> str:
    (status,) = _words(r"received a (\d{3}) response\?", question)
    line = re.compile(r'^(\S+) \S+ \S+ \[[^\]]+\] "[^"]*" (\d{3}) \d+ "')
    ips = set()
    for text in context.splitlines():
        parsed = line.match(text)
        assert parsed is not None, f"not an access log line: {text!r}"
        if parsed[2] == status:
            ips.add(parsed[1])
    return str(len(ips))


_MONTH_NUMBERS = {m: n for n, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul"), 1)}


def auth_log(question: str, context: str) -> str:
    m1, d1, m2, d2 = _words(r"between (\w+) (\d+) and (\w+) (\d+),", question)
    start = date(2026, _MONTH_NUMBERS[m1[:3]], int(d1))
    end = date(2026, _MONTH_NUMBERS[m2[:3]], int(d2))
    failed = 0
    for text in context.splitlines():
        month, day, _, _, process, rest = text.split(maxsplit=5)
        when = date(2026, _MONTH_NUMBERS[month], int(day))
        failed += (
            start <= when <= end
            and process.startswith("sshd[")
            and rest.startswith("Failed password for ")
        )
    return str(failed)


def stock(question: str, context: str) -> str:
    (sku,) = _words(r"count for (SKU-\d+)\?", question)
    updates = [r for r in map(json.loads, context.splitlines()) if r["sku"] == sku]
    updates.sort(key=lambda r: r["ts"])
    assert updates[-1]["ts"] != updates[-2]["ts"], "two latest updates at the same time"
    return str(updates[-1]["stock"])


def source(question: str, context: str) -> str:
    (name,) = _words(r"an argument named (\w+)\?", question)
    hits = 0
    for node in ast.walk(ast.parse(context)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            names = [
                x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x
            ]
            hits += name in names
    return str(hits)


EXPECTED: dict[str, Callable[[str, str], str]] = {
    "count": count,
    "needle": needle,
    "aggregate": aggregate,
    "ledger": ledger,
    "levels": levels,
    "secret": secret,
    "expenses": expenses,
    "orders": orders,
    "two-tables": two_tables,
    "tickets": tickets,
    "events": events,
    "access-log": access_log,
    "auth-log": auth_log,
    "stock": stock,
    "source": source,
}


def check_task(task: Task, size: int) -> list[str]:
    """What is wrong with `task`: its answer, its size, an answer the question gives away."""
    problems = []
    try:
        expected = EXPECTED[task.family](task.question, task.context)
    except (AssertionError, ValueError, KeyError, IndexError, SyntaxError) as exc:
        expected = f"no answer: {type(exc).__name__}: {exc}"
    if expected != task.answer:
        problems.append(f"{task.name}: generated {task.answer!r}, recomputed {expected!r}")
    if not size <= len(task.context) <= size * 1.02 + 5_000:
        problems.append(f"{task.name}: {len(task.context):,} characters for size {size:,}")
    if task.answer in {"", "0"}:
        problems.append(f"{task.name}: an empty answer ({task.answer!r})")
    if re.search(rf"(?<![\w-]){re.escape(task.answer)}(?![\w-])", task.question):
        problems.append(f"{task.name}: the question holds the answer {task.answer!r}")
    return problems


def check(families: list[Family], seed: int, per_family: int) -> int:
    """Generate every family at every check size, `per_family` instances each, and print
    every problem; the number of problems found."""
    problems: list[str] = []
    for family in families:
        started, made = time.perf_counter(), 0
        for size in CHECK_SIZES:
            for index in range(per_family):
                problems += check_task(make_task(family, size, seed, index), size)
                made += 1
        took = time.perf_counter() - started
        print(f"{family.name:12} {family.split:8} {made} tasks checked in {took:.1f}s")
    for problem in problems:
        print(f"PROBLEM {problem}")
    print(f"{len(problems)} problems")
    return len(problems)
