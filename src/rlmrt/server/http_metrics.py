"""Prometheus metrics of the server's HTTP requests, beside the run metrics on
`/metrics` (the `metrics` extra, on when the runs' are: `[observe] metrics`).

`rlm_http_requests_total` counts requests by method, route and status;
`rlm_http_request_duration_seconds` is how long they took, by method and route, up to
their last byte (a streamed completion: its `[DONE]`). The route label is the matched
route's template (`/v1/runs/{run_id}`), never the path: ids stay out of the labels
and their number stays bounded; a request no route matched is "unmatched", a method
outside HTTP's usual seven "other". A request whose handler raised before answering
counts as status 500.
"""

from __future__ import annotations

import time
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Prometheus' default buckets, from 5 ms to 10 s, and a completion's minutes beyond
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 300,
)  # fmt: skip
UNMATCHED = "unmatched"
# any token is a valid method: a client sending made-up ones must not grow the labels
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
OTHER_METHOD = "other"


class HTTPMetrics:
    """The request metrics, registered once in `registry`."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.requests = Counter(
            "rlm_http_requests",
            "HTTP requests, by method, route and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "rlm_http_request_duration_seconds",
            "How long HTTP requests took, to their last byte.",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )


@cache
def http_metrics() -> HTTPMetrics:
    """The process's request metrics, in prometheus-client's default registry."""
    return HTTPMetrics()


class RequestMetrics:
    """ASGI middleware: each HTTP request counted and timed (`HTTPMetrics`)."""

    def __init__(self, app: ASGIApp, metrics: HTTPMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # the handler raised before it answered

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else OTHER_METHOD
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.seconds.labels(method, template).observe(time.perf_counter() - started)
