"""Typed extraction on the local model: the same tasks with `output_type` and without.

Six generated tasks with known answers over contexts of 100 KB to 1 MB: lists of
records, nested objects, enums and numbers. Four are the tuning half, two are held out
(do not tune prompts on them; they are reported apart). Each task runs twice on the
local model (`use_local_model` over a default `RLMConfig`, a wall-time cap added):

- typed: `completion(question, context, output_type=T)`; the host checks the FINAL
  value and sends misfits back (`output_retries`, default 2);
- plain: the same question, no `output_type`; the answer text is read as JSON (the
  first JSON value in it) and checked against the same type.

Per run: valid on the first try (typed: no `OutputRejected` event; plain: the text
fits), valid after retries (typed: `result.output` is set), and right (the value
equals the expected one: lists compared as sets of records, numbers within 0.01).

    PYTHONPATH=src .venv/bin/python bench/extraction.py [--tasks a,b] [--modes typed,plain]
        [--seed 1] [--wall 240]
    PYTHONPATH=src .venv/bin/python bench/extraction.py --check   # no model: the answers
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

# -- the tasks ---------------------------------------------------------------------------------

CUSTOMERS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell"]
TEAMS = ["blue", "green", "red", "amber", "violet"]
CITIES = ["Ghent", "Lyon", "Porto", "Graz", "Turku", "Brno", "Cork", "Bari"]
DEPARTMENTS = ["Legal", "Sales", "Finance", "Research", "Support"]
FIRST = ["Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"]
LAST = ["Moss", "Nash", "Ortiz", "Pike", "Quinn", "Roth", "Sato", "Tran", "Ueda", "Voss"]


class Invoice(TypedDict):
    id: str
    amount: float


class Owner(TypedDict):
    team: str
    email: str


class Server(TypedDict):
    host: str
    port: int
    owner: Owner


class Ticket(TypedDict):
    priority: Literal["P1", "P2", "P3", "P4"]
    status: Literal["open", "pending", "closed"]


class SensorStats(TypedDict):
    count: int
    min: float
    max: float


class Employee(TypedDict):
    name: str
    level: Literal["junior", "senior", "lead"]


class Customer(TypedDict):
    id: str
    city: str


class OrderSummary(TypedDict):
    customer: Customer
    item_count: int
    total: float


@dataclass(frozen=True)
class Task:
    name: str
    split: str  # "tuning" or "heldout"
    question: str
    context: str
    output_type: Any
    expected: Any


def _fill(rng: random.Random, size: int, line: Callable[[], str], planted: list[str]) -> str:
    """Lines from `line()` up to `size` characters, with `planted` at random places."""
    lines: list[str] = []
    total = 0
    while total < size:
        text = line()
        lines.append(text)
        total += len(text) + 1
    for text in planted:
        lines.insert(rng.randrange(len(lines) + 1), text)
    return "\n".join(lines) + "\n"


def _unique(seen: set[Any], draw: Callable[[], Any]) -> Any:
    """The first value `draw()` gives that is not in `seen` (then added to it)."""
    while (value := draw()) in seen:
        pass
    seen.add(value)
    return value


def invoices(rng: random.Random, size: int) -> Task:
    target = rng.choice(CUSTOMERS)
    others = [c for c in CUSTOMERS if c != target]
    used: set[Any] = set()

    def new_id() -> str:
        return str(_unique(used, lambda: f"INV-{rng.randrange(10**6):06d}"))

    def row(customer: str, status: str, amount: float | None = None) -> str:
        value = amount if amount is not None else round(rng.uniform(20, 5000), 2)
        return f"{new_id()} | customer: {customer} | amount: {value:.2f} USD | status: {status}"

    expected: list[dict[str, Any]] = []
    planted: list[str] = []
    for _ in range(rng.randint(3, 6)):
        amount = round(rng.uniform(20, 5000), 2)
        text = row(target, "overdue", amount)
        planted.append(text)
        expected.append({"id": text.split(" | ")[0], "amount": amount})

    def filler() -> str:
        if rng.random() < 0.3:
            return row(target, rng.choice(["paid", "draft"]))
        return row(rng.choice(others), rng.choice(["paid", "overdue", "draft"]))

    return Task(
        "invoices",
        "tuning",
        f"List every overdue invoice of the customer {target}, each with its id and its"
        " amount in USD (as a JSON list of objects with the keys id and amount).",
        _fill(rng, size, filler, planted),
        list[Invoice],
        expected,
    )


def servers(rng: random.Random, size: int) -> Task:
    names = list(range(1, 20_000))
    rng.shuffle(names)

    def block(number: int) -> tuple[str, dict[str, Any]]:
        host = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        port = rng.choice([80, 443, 8080, 8443, 9000, 5432, 6379])
        team = rng.choice(TEAMS)
        email = f"{rng.choice(FIRST).lower()}@{team}.example.org"
        text = (
            f"[server web-{number}]\nhost = {host}\nport = {port}\n"
            f"owner.team = {team}\nowner.email = {email}\nregion = eu-{rng.randrange(1, 4)}\n"
        )
        return text, {"host": host, "port": port, "owner": {"team": team, "email": email}}

    target = names.pop()
    target_text, expected = block(target)
    iterator = iter(names)
    context = _fill(rng, size, lambda: block(next(iterator))[0], [target_text])
    return Task(
        "servers",
        "tuning",
        f"Give the configuration of server web-{target}: its host, its port, and its owner"
        " (team and email), as a JSON object with the keys host, port and owner.",
        context,
        Server,
        expected,
    )


def tickets(rng: random.Random, size: int) -> Task:
    used: set[int] = set()

    def line() -> str:
        number = rng.randrange(10_000, 99_999)
        used.add(number)
        return (
            f"TCK-{number} | priority: {rng.choice(['P1', 'P2', 'P3', 'P4'])} | status:"
            f" {rng.choice(['open', 'pending', 'closed'])} | team: {rng.choice(TEAMS)}"
        )

    context_lines = _fill(rng, size, line, [])
    target = next(n for n in iter(lambda: rng.randrange(10_000, 99_999), None) if n not in used)
    priority, status = rng.choice(["P1", "P2", "P3", "P4"]), rng.choice(["open", "pending"])
    planted = f"TCK-{target} | priority: {priority} | status: {status} | team: {rng.choice(TEAMS)}"
    lines = context_lines.splitlines()
    lines.insert(rng.randrange(len(lines)), planted)
    return Task(
        "tickets",
        "tuning",
        f"What are the priority and the status of ticket TCK-{target}? Answer as a JSON"
        " object with the keys priority and status.",
        "\n".join(lines) + "\n",
        Ticket,
        {"priority": priority, "status": status},
    )


def sensors(rng: random.Random, size: int) -> Task:
    target = f"S-{rng.randrange(10, 99)}"
    others = [f"S-{n}" for n in range(10, 99) if f"S-{n}" != target]
    readings: list[float] = []

    def line() -> str:
        stamp = (
            f"2026-03-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}"
        )
        if rng.random() < 0.02:
            value = round(rng.uniform(-5, 35), 1)
            readings.append(value)
            return f"{stamp} sensor={target} temp={value}"
        return f"{stamp} sensor={rng.choice(others)} temp={round(rng.uniform(-5, 35), 1)}"

    context = _fill(rng, size, line, [])
    return Task(
        "sensors",
        "tuning",
        f"For sensor {target}, how many temperature readings are there, and what are the"
        " lowest and the highest temperature? Answer as a JSON object with the keys count,"
        " min and max.",
        context,
        SensorStats,
        {"count": len(readings), "min": min(readings), "max": max(readings)},
    )


def employees(rng: random.Random, size: int) -> Task:
    department, year = rng.choice(DEPARTMENTS), rng.randrange(2012, 2024)
    expected: list[dict[str, Any]] = []
    seen: set[Any] = set()

    def person() -> str:
        return str(
            _unique(
                seen, lambda: f"{rng.choice(FIRST)} {rng.choice(LAST)}-{rng.randrange(100, 999)}"
            )
        )

    planted = []
    for _ in range(rng.randint(2, 5)):
        name, level = person(), rng.choice(["junior", "senior", "lead"])
        planted.append(f"{name},{department},{level},{year},{rng.choice(CITIES)}")
        expected.append({"name": name, "level": level})

    def line() -> str:
        dept = rng.choice(DEPARTMENTS)
        start = rng.randrange(2012, 2024)
        if dept == department and start == year:
            start = year + 1
        level = rng.choice(["junior", "senior", "lead"])
        return f"{person()},{dept},{level},{start},{rng.choice(CITIES)}"

    body = _fill(rng, size, line, planted)
    return Task(
        "employees",
        "heldout",
        f"List the employees of the {department} department who started in {year}, each"
        " with their name and level (a JSON list of objects with the keys name and level).",
        "name,department,level,start_year,office\n" + body,
        list[Employee],
        expected,
    )


def orders(rng: random.Random, size: int) -> Task:
    used: set[Any] = set()

    def order(number: int) -> tuple[str, dict[str, Any]]:
        items: list[dict[str, Any]] = [
            {
                "sku": f"SKU-{rng.randrange(10_000, 99_999)}",
                "qty": rng.randint(1, 4),
                "price": round(rng.uniform(2, 300), 2),
            }
            for _ in range(rng.randint(1, 5))
        ]
        customer = {"id": f"C-{rng.randrange(100, 999)}", "city": rng.choice(CITIES)}
        record = {"order": f"ORD-{number}", "customer": customer, "items": items}
        total = round(sum(i["qty"] * i["price"] for i in items), 2)
        return json.dumps(record), {
            "customer": customer,
            "item_count": len(items),
            "total": total,
        }

    def fresh() -> int:
        return int(_unique(used, lambda: rng.randrange(1000, 99_999)))

    target = fresh()
    text, expected = order(target)
    context = _fill(rng, size, lambda: order(fresh())[0], [text])
    return Task(
        "orders",
        "heldout",
        f"For order ORD-{target}, give the customer (id and city), the number of items in"
        " it and the order's total in euros (sum of quantity times price), as a JSON object"
        " with the keys customer, item_count and total.",
        context,
        OrderSummary,
        expected,
    )


#: name -> (generator, context size in characters)
TASKS: dict[str, tuple[Callable[[random.Random, int], Task], int]] = {
    "invoices": (invoices, 300_000),
    "servers": (servers, 1_000_000),
    "tickets": (tickets, 100_000),
    "sensors": (sensors, 100_000),
    "employees": (employees, 300_000),
    "orders": (orders, 1_000_000),
}


def make_task(name: str, seed: int) -> Task:
    generate, size = TASKS[name]
    return generate(random.Random(f"{name}:{seed}"), size)


# -- judging -------------------------------------------------------------------------------------


def same(value: Any, expected: Any) -> bool:
    """Equal, numbers within 0.01, lists as multisets of records (order is not asked)."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return bool(value == expected)
    if isinstance(expected, (int, float)) and isinstance(value, (int, float)):
        return abs(value - expected) <= 0.01
    if isinstance(expected, dict) and isinstance(value, dict):
        return set(value) == set(expected) and all(same(value[k], expected[k]) for k in expected)
    if isinstance(expected, list) and isinstance(value, list):
        if len(value) != len(expected):
            return False
        left = list(value)
        for item in expected:
            match = next((i for i, v in enumerate(left) if same(v, item)), None)
            if match is None:
                return False
            left.pop(match)
        return True
    return bool(value == expected)


def first_json(text: str) -> Any:
    """The first JSON value in `text` (a model may wrap it in prose or a code fence)."""
    decoder = json.JSONDecoder()
    for i, char in enumerate(text):
        if char in "[{":
            try:
                return decoder.raw_decode(text, i)[0]
            except ValueError:
                continue
    raise ValueError("no JSON value in the answer")


@dataclass
class Outcome:
    task: str
    split: str
    mode: str
    valid_first: bool
    valid_after: bool
    right: bool
    seconds: float
    stop_reason: str
    answer: str | None
    error: str | None = None


def run(task: Task, mode: str, wall_s: float) -> Outcome:
    from rlmrt import RLM, RLMConfig
    from rlmrt.engine.output_type import OutputInvalid, OutputType
    from rlmrt.events import OutputRejected
    from rlmrt.local.default import use_local_model

    config, client = use_local_model(RLMConfig(max_wall_time_s=wall_s))
    rlm = RLM(config=config, client=client)
    rejected: list[OutputRejected] = []
    rlm.subscribe(lambda e: rejected.append(e) if isinstance(e, OutputRejected) else None)
    typed = OutputType.of(task.output_type)
    started = time.perf_counter()
    try:
        if mode == "typed":
            result = rlm.completion(task.question, task.context, output_type=task.output_type)
        else:
            result = rlm.completion(task.question, task.context)
    except Exception as exc:  # a failed run is invalid and wrong, with its reason
        seconds = time.perf_counter() - started
        return Outcome(
            task.name, task.split, mode, False, False, False, seconds, "error", None, str(exc)
        )
    finally:
        rlm.close()
    seconds = time.perf_counter() - started
    value: Any = None
    valid = False
    if mode == "typed":
        valid = result.output is not None and result.stop_reason != "invalid_output"
        first = valid and not rejected
        if valid:
            value = typed.adapter.dump_python(result.output, mode="json")
    else:
        try:
            value = typed.adapter.dump_python(
                typed.adapter.validate_python(first_json(result.answer or "")), mode="json"
            )
            valid = True
        except (ValueError, OutputInvalid):
            value = None
        first = valid
    right = valid and same(value, task.expected)
    return Outcome(
        task.name, task.split, mode, first, valid, right, seconds, result.stop_reason, result.answer
    )


def check(seed: int) -> None:
    """No model: each task's size, its answer's shape against its own type, and that the
    answer is not given away by the question."""
    from rlmrt.engine.output_type import OutputType

    for name in TASKS:
        task = make_task(name, seed)
        typed = OutputType.of(task.output_type)
        typed.adapter.validate_python(task.expected)
        assert 100_000 <= len(task.context) <= 1_100_000, (name, len(task.context))
        shown = json.dumps(task.expected)[:90]
        print(f"{name:10} {task.split:8} {len(task.context):>9,} chars  expected {shown}")


def summary(outcomes: list[Outcome]) -> None:
    print("\n| half | mode | runs | valid first try | valid after retries | right | median s |")
    print("|---|---|---|---|---|---|---|")
    for split in ("tuning", "heldout"):
        for mode in ("typed", "plain"):
            rows = [o for o in outcomes if o.split == split and o.mode == mode]
            if not rows:
                continue
            n = len(rows)
            print(
                f"| {split} | {mode} | {n} | {sum(o.valid_first for o in rows)}/{n} |"
                f" {sum(o.valid_after for o in rows)}/{n} | {sum(o.right for o in rows)}/{n} |"
                f" {statistics.median(o.seconds for o in rows):.0f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--modes", default="typed,plain")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wall", type=float, default=240.0, help="wall-time cap per run, s")
    parser.add_argument("--check", action="store_true", help="no model: check the tasks")
    parser.add_argument("--out", default=None, help="append each outcome as a JSON line here")
    args = parser.parse_args()
    if args.check:
        check(args.seed)
        return
    outcomes: list[Outcome] = []
    for name in args.tasks.split(","):
        task = make_task(name, args.seed)
        for mode in args.modes.split(","):
            outcome = run(task, mode, args.wall)
            outcomes.append(outcome)
            line = json.dumps(outcome.__dict__, ensure_ascii=False)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as handle:
                    handle.write(line + "\n")
    summary(outcomes)


if __name__ == "__main__":
    main()
