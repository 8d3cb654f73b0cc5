"""What the quality task generators share: the instance they return, vocabularies, fillers.

Every generator takes a seeded `random.Random` and a target size in characters and
returns an `Instance`: the question as a user would ask it, the context, and the answer
the generator planted. `quality_check.py` recomputes every answer from the context and
the question alone, so a generator's bookkeeping is never trusted.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import NamedTuple


class Instance(NamedTuple):
    question: str
    context: str
    answer: str


WORDS = (
    "river",
    "stone",
    "market",
    "lantern",
    "harbor",
    "copper",
    "signal",
    "meadow",
    "archive",
    "orbit",
    "ledger",
    "window",
    "canyon",
    "pepper",
    "violet",
    "engine",
    "garden",
    "thunder",
    "silver",
    "marble",
    "forest",
    "beacon",
)
CITIES = (
    "Lisbon",
    "Rotterdam",
    "Krakow",
    "Lyon",
    "Porto",
    "Leipzig",
    "Turin",
    "Ghent",
    "Malmo",
    "Bilbao",
    "Brno",
    "Tampere",
    "Aarhus",
    "Graz",
    "Utrecht",
    "Seville",
)
FIRST_NAMES = (
    "Maria",
    "Jonas",
    "Aisha",
    "Pieter",
    "Lena",
    "Tomas",
    "Chloe",
    "Rafael",
    "Ines",
    "Kasper",
    "Nadia",
    "Oskar",
    "Yuki",
    "Bruno",
    "Elif",
    "Marek",
)
LAST_NAMES = (
    "Keller",
    "Novak",
    "Silva",
    "Jansen",
    "Moreau",
    "Berg",
    "Rossi",
    "Kowalski",
    "Haddad",
    "Lindqvist",
    "Ortega",
    "Fischer",
    "Dubois",
    "Tanaka",
    "Horvat",
    "Meyer",
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def day_in_2026(rng: random.Random) -> date:
    return date(2026, 1, 1) + timedelta(days=rng.randrange(365))


def lines_until(size: int, make_line: Callable[[], str], head: str = "") -> list[str]:
    """Lines from `make_line` until the text they make, after `head`, is `size` characters."""
    lines: list[str] = []
    length = len(head) - 1  # "\n".join puts no newline after the last line
    while length < size:
        line = make_line()
        lines.append(line)
        length += len(line) + 1
    return lines


def fits_as_written(value: str) -> bool:
    """Whether a decimal answer reads the same however a program prints it: no trailing
    zero after the point (1234.50 prints as 1234.5)."""
    return "." not in value or not value.endswith("0")
