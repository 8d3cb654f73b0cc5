"""The held-out half of the quality task families: shapes no profile is tuned on.

Whoever tunes the engine on the bench works from the tuning half (`quality_tuning.py`)
and its numbers; reading these generators or their trajectories while tuning spends the
held-out half. Their answers are rechecked independently in `quality_check.py`.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import date, datetime, timedelta

from quality_data import (
    CITIES,
    MONTHS,
    WORDS,
    Instance,
    day_in_2026,
    lines_until,
    person,
    sentence,
)

# status: weight; OPEN, RESOLVED and CLOSED each have a look-alike that contains them
_TICKET_STATUSES = {
    "OPEN": 15,
    "REOPENED": 6,
    "IN-PROGRESS": 10,
    "RESOLVED": 22,
    "UNRESOLVED": 6,
    "CLOSED": 30,
    "CLOSED-DUPLICATE": 9,
}
_SUBJECTS = (
    "Login fails after password reset",
    "Invoice PDF is blank",
    '"Export to CSV, then import" loses accents',
    "Customer says the ticket was closed too early",
    "Reopened: sync stops at 99%",
    "Refund not resolved, please check",
    "Slow dashboard on Mondays",
    "Cannot attach files, over 10 MB",
)


def tickets_task(rng: random.Random, size: int) -> Instance:
    """A count where near-miss values exist (OPEN vs REOPENED), CSV with a header."""
    head = "ticket,opened,priority,status,assignee,subject\n"
    target = rng.choice(("OPEN", "RESOLVED", "CLOSED"))
    statuses, weights = list(_TICKET_STATUSES), list(_TICKET_STATUSES.values())
    count, number = 0, rng.randint(10_000, 20_000)

    def line() -> str:
        nonlocal count, number
        number += 1
        status = rng.choices(statuses, weights)[0]
        count += status == target
        subject = rng.choice(_SUBJECTS)
        if "," in subject or '"' in subject:
            subject = '"' + subject.replace('"', '""') + '"'
        priority = rng.choice(("low", "normal", "normal", "high", "urgent"))
        return f"T-{number},{day_in_2026(rng)},{priority},{status},{person(rng)},{subject}"

    lines = lines_until(size, line, head)
    return Instance(f"How many tickets have status {target}?", head + "\n".join(lines), str(count))


_EVENTS = ("page_view", "search", "add_to_cart", "checkout", "login")


def events_task(rng: random.Random, size: int) -> Instance:
    """The most frequent category among the lines of one kind, key=value events."""
    # each event kind has its own city mix, so the busiest city overall is often not the
    # busiest for the kind asked about
    mixes = {event: [rng.random() ** 2 + 0.05 for _ in CITIES] for event in _EVENTS}
    counts: dict[str, Counter[str]] = {event: Counter() for event in _EVENTS}

    def line() -> str:
        event = rng.choices(_EVENTS, (50, 20, 15, 8, 7))[0]
        city = rng.choices(CITIES, mixes[event])[0]
        counts[event][city] += 1
        stamp = f"{day_in_2026(rng)}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
        device = rng.choice(("mobile", "desktop", "tablet"))
        extra = f" amount={rng.randint(500, 40_000) / 100:.2f}" if event == "checkout" else ""
        return (
            f"ts={stamp} event={event} user=u{rng.randint(1, 99_999):05d} city={city}"
            f" device={device}{extra}"
        )

    lines = lines_until(size, line)
    clear = [event for event in _EVENTS if _clear_winner(counts[event])]
    event = rng.choice(clear)  # a tie in every kind has not happened; if it does, fail loudly
    return Instance(
        f"Which city had the most {event} events?",
        "\n".join(lines),
        counts[event].most_common(1)[0][0],
    )


def _clear_winner(counter: Counter[str]) -> bool:
    (_, first), (_, second) = counter.most_common(2)
    return first > second


_PATHS = ("/", "/login", "/cart", "/checkout", "/api/orders", "/static/app.js", "/search")
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
    "curl/8.5.0",
    "python-requests/2.32.3",
)


def access_log_task(rng: random.Random, size: int) -> Instance:
    """A distinct count: client addresses that got one status, Apache combined log."""
    ips = [_ip(rng) for _ in range(max(40, size // 700))]
    popularity = [1 / (rank + 1) ** 0.7 for rank in range(len(ips))]
    target = rng.choice((404, 403, 500))
    seen: set[str] = set()
    moment = datetime(2026, 3, 1) + timedelta(seconds=rng.randrange(86_400 * 200))

    def line() -> str:
        nonlocal moment
        moment += timedelta(seconds=rng.randint(0, 40))
        ip = rng.choices(ips, popularity)[0]
        status = rng.choices((200, 304, 301, 404, 403, 500), (70, 8, 4, 9, 5, 4))[0]
        if status == target:
            seen.add(ip)
        # a body size can be any number, a status code's too
        size_bytes = (
            rng.choice((404, 403, 500)) if rng.random() < 0.03 else rng.randint(120, 60_000)
        )
        stamp = f"{moment:%d}/{MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000"
        method = rng.choices(("GET", "POST"), (85, 15))[0]
        return (
            f'{ip} - - [{stamp}] "{method} {rng.choice(_PATHS)} HTTP/1.1" {status} {size_bytes}'
            f' "-" "{rng.choice(_AGENTS)}"'
        )

    lines = lines_until(size, line)
    return Instance(
        f"How many different IP addresses received a {target} response?",
        "\n".join(lines),
        str(len(seen)),
    )


_USERS = ("root", "admin", "deploy", "ubuntu", "git", "postgres", "test")
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July")


def auth_log_task(rng: random.Random, size: int) -> Instance:
    """A date window, syslog auth.log lines (no year, day padded with a space)."""
    per_day = max(1, size // 90 // 90)  # ~90 days of ~90-character lines
    moment = datetime(2026, rng.randint(1, 3), 1) + timedelta(seconds=rng.randrange(3600))
    pid = rng.randint(1000, 5000)
    failed: Counter[date] = Counter()

    def line() -> str:
        nonlocal moment, pid
        moment += timedelta(seconds=rng.randint(0, 2 * 86_400 // per_day))
        day = moment.date()
        pid += rng.randint(1, 7)
        host = rng.choice(("web-1", "web-2", "bastion"))
        ip = _ip(rng)
        port = rng.randint(30_000, 65_000)
        user = rng.choice(_USERS)
        kind = rng.choices(range(6), (30, 12, 18, 8, 20, 12))[0]
        if kind in (0, 1):
            failed[day] += 1
        message = (
            f"sshd[{pid}]: Failed password for {user} from {ip} port {port} ssh2",
            f"sshd[{pid}]: Failed password for invalid user {user} from {ip} port {port} ssh2",
            f"sshd[{pid}]: Accepted publickey for {user} from {ip} port {port} ssh2",
            f"sshd[{pid}]: Failed publickey for {user} from {ip} port {port} ssh2",
            f"sshd[{pid}]: Connection closed by {ip} port {port} [preauth]",
            f"CRON[{pid}]: pam_unix(cron:session): session opened for user {user} by (uid=0)",
        )[kind]
        return f"{MONTHS[day.month - 1]} {day.day:>2} {moment:%H:%M:%S} {host} {message}"

    lines = lines_until(size, line)
    days = sorted(failed)
    start = rng.choice(days[: max(1, len(days) - 3)])
    end = min(start + timedelta(days=rng.randint(2, 20)), days[-1])
    count = sum(n for d, n in failed.items() if start <= d <= end)
    return Instance(
        "How many failed password attempts did sshd log between"
        f" {_MONTH_NAMES[start.month - 1]} {start.day} and {_MONTH_NAMES[end.month - 1]}"
        f" {end.day}, both days included?",
        "\n".join(lines),
        str(count),
    )


def stock_task(rng: random.Random, size: int) -> Instance:
    """The latest of shuffled updates: the value with the last timestamp, not the last
    line, JSON lines."""
    skus = [f"SKU-{n}" for n in rng.sample(range(1000, 99_999), max(20, size // 2500))]
    history: dict[str, list[tuple[str, int]]] = {sku: [] for sku in skus}
    used: set[tuple[str, str]] = set()

    def record() -> str:
        sku = rng.choice(skus)
        while (sku, stamp := _stamp(rng)) in used:
            pass
        used.add((sku, stamp))
        stock = rng.randint(0, 500)
        history[sku].append((stamp, stock))
        return json.dumps(
            {"ts": stamp, "sku": sku, "stock": stock, "scanner": f"scan-{rng.randint(1, 40)}"}
        )

    lines = lines_until(size, record)
    order = list(range(len(lines)))
    rng.shuffle(order)
    shuffled = [lines[i] for i in order]
    last_line = {json.loads(line)["sku"]: json.loads(line)["stock"] for line in shuffled}
    latest = {sku: max(updates)[1] for sku, updates in history.items() if len(updates) >= 4}
    # a SKU whose last line is not its latest update, so reading by position is wrong
    sku = rng.choice(sorted(s for s, stock in latest.items() if last_line[s] != stock))
    return Instance(
        f"What is the most recent stock count for {sku}?", "\n".join(shuffled), str(latest[sku])
    )


def _stamp(rng: random.Random) -> str:
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    return f"{day_in_2026(rng)}T{clock}Z"


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(low, 254)) for low in (11, 0, 0, 1))


_TARGET_PARAMS = {
    "timeout": ("timeout_s", "connect_timeout"),
    "retries": ("max_retries", "retries_left"),
    "user_id": ("user_ids", "owner_user_id"),
    "limit": ("limit_bytes", "rate_limit"),
}
_OTHER_PARAMS = ("url", "path", "payload", "session", "verbose", "dry_run", "offset", "tags")
_VERBS = ("fetch", "load", "store", "sync", "send", "parse", "render", "check", "build", "drop")


def source_task(rng: random.Random, size: int) -> Instance:
    """A question over concatenated Python source files: functions taking an argument."""
    target = rng.choice(sorted(_TARGET_PARAMS))
    pool = [target, *_TARGET_PARAMS[target], *(p for ps in _TARGET_PARAMS.values() for p in ps)]
    pool += list(_OTHER_PARAMS) * 2
    count = 0
    files: list[str] = []
    length = 0
    while length < size:
        module = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}"
        parts = [f"# ===== src/shop/{module}.py =====", f'"""{sentence(rng)}"""', "", "import time"]
        for _ in range(rng.randint(3, 8)):
            in_class = rng.random() < 0.3
            if in_class:
                parts += ["", "", f"class {module.title().replace('_', '')}{rng.randint(1, 99)}:"]
            params = rng.sample(pool, rng.randint(0, 4))
            params = list(dict.fromkeys(params))  # a name once per signature
            count += target in params
            parts += ["", *_function(rng, params, in_class, target)]
        text = "\n".join(parts) + "\n"
        files.append(text)
        length += len(text) + 1
    return Instance(
        f"How many functions or methods take an argument named {target}?",
        "\n".join(files),
        str(count),
    )


def _function(rng: random.Random, params: list[str], in_class: bool, target: str) -> list[str]:
    """One function's lines: one-line or one-parameter-a-line signatures, defaults, and
    bodies that pass the target name as a keyword to calls (a look-alike)."""
    indent = "    " if in_class else ""
    name = f"{rng.choice(_VERBS)}_{rng.choice(WORDS)}"
    # defaults only on a tail of the parameters, as Python requires
    with_default = len(params) - rng.randint(0, len(params))
    written = [
        f"{p}: int = {rng.randint(1, 60)}" if i >= with_default else p for i, p in enumerate(params)
    ]
    if in_class:
        written.insert(0, "self")
    if len(written) > 1 and rng.random() < 0.3:
        star = rng.randrange(1, len(written))
        written.insert(star, "*")
    if written and rng.random() < 0.35:
        signature = [f"{indent}def {name}(", *(f"{indent}    {w}," for w in written), f"{indent}):"]
    else:
        signature = [f"{indent}def {name}({', '.join(written)}):"]
    body = [f'{indent}    """{sentence(rng)}"""']
    if rng.random() < 0.3:
        body.append(f"{indent}    time.sleep(0)  # {target} handled by the caller")
    if rng.random() < 0.4:
        body.append(f"{indent}    result = helper({target}={rng.randint(1, 30)})")
    else:
        body.append(f"{indent}    result = {rng.randint(0, 9)}")
    body.append(f"{indent}    return result")
    return signature + body
