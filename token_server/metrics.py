"""Prometheus metrics kept as plain counters and exported by a collector at scrape time.

Updating a labelled prometheus-client metric takes a lock and a label lookup per call; on the
token hot path a dict increment is enough because the event loop is single-threaded.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class _Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0


class Metrics:
    """The token server's counters; one instance per app, exported through `render()`."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: defaultdict[str, _Histogram] = defaultdict(_Histogram)
        self.tokens_minted: defaultdict[str, int] = defaultdict(int)
        self.auth_failures: defaultdict[str, int] = defaultdict(int)
        self.rate_limited: defaultdict[str, int] = defaultdict(int)
        self.rate_limit_backend_errors = 0
        self.webhook_events: defaultdict[str, int] = defaultdict(int)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_MetricsCollector(self))
        # The standard process_* and python_info series every Prometheus dashboard expects.
        ProcessCollector(registry=self._registry)
        PlatformCollector(registry=self._registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, status)] += 1
        histogram = self.latency[route]
        histogram.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        histogram.count += 1
        histogram.sum += seconds

    def count_backend_error(self) -> None:
        self.rate_limit_backend_errors += 1

    def render(self) -> bytes:
        return generate_latest(self._registry)


class _MetricsCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        requests = CounterMetricFamily(
            "token_server_requests",
            "HTTP requests by route, method and status.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), value in sorted(m.requests.items()):
            requests.add_metric([route, method, str(status)], value)
        yield requests

        latency = HistogramMetricFamily(
            "token_server_request_duration_seconds",
            "Time from request start to the last response byte handed to the server.",
            labels=["route"],
        )
        for route, histogram in sorted(m.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(
                (*LATENCY_BUCKETS, float("inf")), histogram.buckets, strict=True
            ):
                cumulative += count
                buckets.append((_bound_label(bound), cumulative))
            latency.add_metric([route], buckets, histogram.sum)
        yield latency

        yield _counter(
            "token_server_tokens_minted",
            "LiveKit access tokens issued, by authentication method.",
            "auth",
            m.tokens_minted,
        )
        yield _counter(
            "token_server_auth_failures",
            "Rejected authentication attempts, by reason.",
            "reason",
            m.auth_failures,
        )
        yield _counter(
            "token_server_rate_limited",
            "Requests refused with 429, by limit (ip or principal).",
            "scope",
            m.rate_limited,
        )

        yield CounterMetricFamily(
            "token_server_rate_limit_backend_errors",
            "Redis errors that made a rate-limit check fall back to in-process counting.",
            value=m.rate_limit_backend_errors,
        )

        yield _counter(
            "token_server_webhook_events",
            "Verified LiveKit webhook events, by event type.",
            "event",
            m.webhook_events,
        )


def _counter(
    name: str, documentation: str, label: str, values: Mapping[str, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
