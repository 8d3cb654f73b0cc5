"""The tuning half of the quality task families: the shapes a profile may be tuned on.

The first three (count, needle, aggregate) are the bench's original shapes, kept as they
were so their numbers stay comparable with earlier runs. The held-out half lives in
`quality_heldout.py`: do not read it while tuning.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from quality_data import (
    CITIES,
    WORDS,
    Instance,
    day_in_2026,
    fits_as_written,
    lines_until,
    person,
    sentence,
)

_SERVICES = ("auth", "billing", "search", "mailer", "gateway", "scheduler")
_CUSTOMERS = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries")


# -- the original three -------------------------------------------------------------------


def count_task(rng: random.Random, size: int) -> Instance:
    """Log lines of one level, `[ERROR]` style."""
    errors = 0

    def line() -> str:
        nonlocal errors
        level = rng.choices(("INFO", "WARN", "ERROR", "DEBUG"), (60, 20, 7, 13))[0]
        errors += level == "ERROR"
        stamp = (
            f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        )
        return f"{stamp} [{level}] {rng.choice(_SERVICES)}: {sentence(rng)}"

    lines = lines_until(size, line)
    return Instance(
        "How many log lines have the level ERROR (written as [ERROR])? Answer with the number.",
        "\n".join(lines),
        str(errors),
    )


def needle_task(rng: random.Random, size: int) -> Instance:
    """One access code in filler paragraphs."""
    paragraphs = lines_until(
        size, lambda: " ".join(sentence(rng) for _ in range(rng.randint(3, 7))) + "\n"
    )
    vault = rng.choice(("Orion", "Vega", "Lyra", "Draco"))
    code = f"{rng.randint(1000, 9999)}-{rng.choice('ABCDEFGHJK')}{rng.choice('LMNPQRSTUV')}"
    at = rng.randint(len(paragraphs) // 4, len(paragraphs) - 1)
    paragraphs.insert(at, f"The access code for vault {vault} is {code}. Keep it safe.\n")
    return Instance(
        f"What is the access code for vault {vault}? Answer with the code.",
        "\n".join(paragraphs),
        code,
    )


def aggregate_task(rng: random.Random, size: int) -> Instance:
    """The total of one customer's overdue invoices, `key: value` fields between pipes."""
    total, number = 0, 0
    customer = rng.choice(_CUSTOMERS)

    def line() -> str:
        nonlocal total, number
        number += 1
        who = rng.choice(_CUSTOMERS)
        status = rng.choice(("paid", "open", "overdue"))
        amount = rng.randint(10, 5000)
        if who == customer and status == "overdue":
            total += amount
        return (
            f"INV-{number:06d} | 2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} |"
            f" customer: {who} | amount: {amount} USD | status: {status}"
        )

    lines = lines_until(size, line)
    return Instance(
        f"What is the total amount in USD of the invoices of {customer} whose status is"
        " overdue? Answer with the number.",
        "\n".join(lines),
        str(total),
    )


# -- new tuning families ------------------------------------------------------------------

_LEDGER_CUSTOMERS = (
    "Acme Corp",
    "Cyberdyne",
    "Globex",
    "Hooli",
    "Initech",
    "Soylent",
    "Stark Industries",
    "Tyrell",
    "Umbrella",
    "Wayne Enterprises",
)
LEDGER_HEAD = (
    "# Accounts receivable ledger, fiscal year 2026\n"
    "# invoice | customer | amount EUR | issued | due | status\n"
)


def ledger_task(rng: random.Random, size: int) -> Instance:
    """The README's showcase question on a fresh ledger in examples/ledger.txt's format."""
    overdue, number = 0, 0

    def line() -> str:
        nonlocal overdue, number
        number += 1
        issued = day_in_2026(rng).replace(day=rng.randint(1, 28))
        due = issued.replace(month=issued.month % 12 + 1, year=issued.year + issued.month // 12)
        status = rng.choices(("PAID", "OPEN", "OVERDUE"), (69, 20, 11))[0]
        overdue += status == "OVERDUE"
        amount = rng.randint(11_000, 2_500_000) / 100
        customer = rng.choice(_LEDGER_CUSTOMERS)
        return f"INV-{number:05d} | {customer} | {amount:.2f} | {issued} | {due} | {status}"

    lines = lines_until(size, line, LEDGER_HEAD + "\n")
    return Instance(
        "How many invoices have status OVERDUE?",
        LEDGER_HEAD + "\n" + "\n".join(lines) + "\n",
        str(overdue),
    )


# levels some services spell one way and others another; the question names the short one
_LEVEL_NEAR_MISSES = {"WARN": "WARNING", "ERR": "ERROR"}
_LOG_MESSAGES = (
    "request served",
    "cache miss for key",
    "retrying upstream call",
    "disk usage warning threshold crossed",
    "connection reset by peer",
    "slow query detected",
    "token refreshed",
    "error budget recalculated",
)


def levels_task(rng: random.Random, size: int) -> Instance:
    """Counts where a near-miss level exists (WARN vs WARNING), key=value log lines."""
    target = rng.choice(sorted(_LEVEL_NEAR_MISSES))
    levels = ("DEBUG", "INFO", "WARN", "WARNING", "ERR", "ERROR")
    weights = (15, 50, 8, 9, 6, 7)
    count = 0

    def line() -> str:
        nonlocal count
        level = rng.choices(levels, weights)[0]
        count += level == target
        stamp = f"{day_in_2026(rng)}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
        return (
            f"ts={stamp} level={level} service={rng.choice(_SERVICES)}"
            f' host=web-{rng.randint(1, 9)} msg="{rng.choice(_LOG_MESSAGES)}"'
            f" duration_ms={rng.randint(1, 2500)}"
        )

    lines = lines_until(size, line)
    return Instance(f"How many log entries have level {target}?", "\n".join(lines), str(count))


_SECRETS = (
    ("Wi-Fi password", "guest Wi-Fi password", "office"),
    ("alarm code", "backup alarm code", "warehouse"),
)


def secret_task(rng: random.Random, size: int) -> Instance:
    """A needle among distractors that look like it: the same secret for other places, a
    look-alike secret for the same place, and the place's retired value."""
    noun, look_alike, place = rng.choice(_SECRETS)
    city, *others = rng.sample(CITIES, 9)
    used: set[str] = set()

    def secret() -> str:
        while (value := f"{rng.choice(WORDS)}-{rng.randint(1000, 9999)}") in used:
            pass
        used.add(value)
        return value

    answer = secret()
    planted = [f"The {noun} for the {city} {place} is {answer}."]
    planted += [f"The {noun} for the {other} {place} is {secret()}." for other in others]
    planted.append(f"The {look_alike} for the {city} {place} is {secret()}.")
    planted.append(
        f"Until March, the {noun} for the {city} {place} was {secret()}; it was retired."
    )
    paragraphs = lines_until(
        size, lambda: " ".join(sentence(rng) for _ in range(rng.randint(3, 7))) + "\n"
    )
    for fact in planted:
        at = rng.randrange(len(paragraphs))
        sentences = re.split(r"(?<=\.) ", paragraphs[at].rstrip("\n"))
        sentences.insert(rng.randrange(len(sentences) + 1), fact)
        paragraphs[at] = " ".join(sentences) + "\n"
    return Instance(f"What is the {noun} for the {city} {place}?", "\n".join(paragraphs), answer)


_DEPARTMENTS = ("Sales", "Marketing", "Engineering", "Support", "Finance", "Legal")
_CATEGORIES = ("travel", "meals", "software", "hardware", "training", "office supplies")
_NOTES = ("", "", "", "client visit", "Taxi, airport", "team lunch", "conference, day 2")


def expenses_task(rng: random.Random, size: int) -> Instance:
    """A sum, a maximum or an average (rounding stated) over a CSV with a header."""
    head = "date,employee,department,category,amount_eur,receipt,note\n"
    groups: dict[tuple[str, str], list[Decimal]] = defaultdict(list)

    def line() -> str:
        department, category = rng.choice(_DEPARTMENTS), rng.choice(_CATEGORIES)
        amount = Decimal(rng.randint(350, 250_000)).scaleb(-2)  # two decimals, as written
        groups[department, category].append(amount)
        note = rng.choice(_NOTES)
        note = f'"{note}"' if "," in note else note
        return (
            f"{day_in_2026(rng)},{person(rng)},{department},{category},{amount},"
            f"R-{rng.randint(100_000, 999_999)},{note}"
        )

    lines = lines_until(size, line, head)
    kind = rng.choice(("sum", "max", "average"))
    answers = {key: _expense_answer(kind, amounts) for key, amounts in groups.items()}
    department, category = rng.choice(sorted(k for k, a in answers.items() if a is not None))
    questions = {
        "sum": f"What is the total of the {category} expenses of the {department} department"
        " in euros, to the cent?",
        "max": f"What was the largest single {category} expense of the {department}"
        " department, in euros?",
        "average": f"What is the average {category} expense of the {department} department"
        " in euros, rounded to two decimal places?",
    }
    return Instance(questions[kind], head + "\n".join(lines), str(answers[department, category]))


def _expense_answer(kind: str, amounts: list[Decimal]) -> str | None:
    """The answer for one group, or None when a correct program could print it otherwise
    (a trailing zero, an average on a rounding tie)."""
    if kind == "sum":
        value = sum(amounts, Decimal(0))
    elif kind == "max":
        value = max(amounts)
    else:
        exact = sum(amounts, Decimal(0)) / len(amounts)
        value = exact.quantize(Decimal("0.01"))
        if abs(abs(exact - value) - Decimal("0.005")) < Decimal("0.0001"):
            return None
    text = str(value.quantize(Decimal("0.01")))
    return text if fits_as_written(text) else None


_ORDER_STATUSES = ("pending", "shipped", "delivered", "returned", "return_requested", "cancelled")
_CHANNELS = ("web", "app", "phone", "marketplace")


def orders_task(rng: random.Random, size: int) -> Instance:
    """A conjunction with a numeric threshold over JSON lines."""
    number = rng.randint(100_000, 200_000)
    # (status, channel, items, total, express) of every order, for the planted answer
    records: list[tuple[str, str, int, float, bool]] = []

    def line() -> str:
        nonlocal number
        number += rng.randint(1, 9)
        total = rng.randint(500, 150_000) / 100
        if total in (100.0, 250.0, 500.0, 1000.0):  # never on a threshold: "above" is clear
            total += 0.01
        placed = f"{day_in_2026(rng)}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
        channel = rng.choice(_CHANNELS)
        status = rng.choices(_ORDER_STATUSES, (10, 25, 40, 10, 5, 10))[0]
        items = min(rng.randint(1, 6), rng.randint(1, 12))
        express = rng.random() < 0.2
        record = {
            "order_id": f"ORD-{number}",
            "placed": placed,
            "customer": f"C-{rng.randint(1, 9999):05d}",
            "channel": channel,
            "status": status,
            "items": items,
            "total_eur": total,
            "express": express,
        }
        records.append((status, channel, items, total, express))
        return json.dumps(record)

    lines = lines_until(size, line)
    status, channel = rng.choice(_ORDER_STATUSES), rng.choice(_CHANNELS)
    items, above = rng.randint(2, 5), rng.choice((100, 250, 500, 1000))
    kind = rng.randrange(3)
    if kind == 0:
        question = f"How many {status} orders had more than {items} items?"
        count = sum(r[0] == status and r[2] > items for r in records)
    elif kind == 1:
        question = (
            f"How many orders placed through the {channel} channel had a total above {above} euros?"
        )
        count = sum(r[1] == channel and r[3] > above for r in records)
    else:
        question = f"How many {status} express orders had a total above {above} euros?"
        count = sum(r[0] == status and r[4] and r[3] > above for r in records)
    return Instance(question, "\n".join(lines), str(count))


def two_tables_task(rng: random.Random, size: int) -> Instance:
    """A two-hop lookup: an order's customer id in one table, that customer in another."""
    customers = [
        (f"C-{n:05d}", person(rng), rng.choice(CITIES), day_in_2026(rng) - timedelta(days=1500))
        for n in rng.sample(range(1, 99_999), max(50, size // 90))
    ]
    customer_rows = ["# Customers", "customer_id,name,city,since"]
    customer_rows += [f"{cid},{name},{city},{since}" for cid, name, city, since in customers]
    customers_text = "\n".join(customer_rows) + "\n"
    order_ids = iter(rng.sample(range(100_000, 999_999), size // 20))
    orders: list[tuple[str, int]] = []

    def order() -> str:
        at = rng.randrange(len(customers))
        orders.append((f"ORD-{next(order_ids)}", at))
        return (
            f"{orders[-1][0]} | {customers[at][0]} | {day_in_2026(rng)} | {rng.randint(1, 9)} items"
        )

    head = "# Orders\n# order | customer | placed | items\n"
    order_rows = lines_until(size - len(customers_text), order, head)
    orders_text = head + "\n".join(order_rows) + "\n"
    order_id, at = rng.choice(orders)
    _, name, city, _ = customers[at]
    sections = [customers_text, orders_text]
    rng.shuffle(sections)
    if rng.random() < 0.5:
        return Instance(
            f"In which city is the customer who placed order {order_id}?", "\n".join(sections), city
        )
    return Instance(f"Who placed order {order_id}?", "\n".join(sections), name)
