"""The secret layer at work, for an operator: freshness, /metrics, and Embedded Metric Format lines.

:func:`freshness` is the one check of whether a secret is stale. ``/ready``, the
Prometheus metrics and the EMF lines all call it, so they cannot disagree.

``/metrics`` is served by its own listener (``ECOMIND_METRICS_HOST``:``ECOMIND_METRICS_PORT``,
default 127.0.0.1:9464), never by the public app: the load balancer and the Ingress
route the API's port only, so the metrics are off the public router without a token
to manage. The collector reads the counters of :class:`app.secrets.stats.Stats` and
each secret's :class:`~app.secrets.store.Health` when scraped: nothing is computed
per request. Every name comes from the catalog, app/telemetry.py; no label holds a
value, an email or a token (labels are variable names, operations, regions, stages
and closed sets of causes).

EMF lines (``ECOMIND_EMF_INTERVAL`` seconds apart, on stdout) carry the two numbers
the CloudFormation alarms watch, per secret variable; CloudWatch Logs turns them into
metrics (awslogs on ECS ships stdout there).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, MetricsHandler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app import telemetry as t
from app.observe.logs import RESOURCE_ERRNOS, CountedLine
from app.secrets.environment import SECRET_VARIABLES

if TYPE_CHECKING:
    from app.settings.loading import Settings

__all__ = ["EmfReporter", "MetricsServer", "freshness", "registry"]

log = logging.getLogger("app.observe.metrics")


@dataclass(frozen=True)
class Freshness:
    """One secret variable read from a store, as an operator sees it."""

    variable: str
    since_refresh: float  # seconds since the last successful fetch of the value served
    age: float | None  # seconds since its version was created, if known
    region: str | None
    stale: bool
    attempts: int = 0
    failures: dict[str, int] = field(default_factory=dict)


def freshness(settings: Settings, stale_after: float, now: float | None = None) -> list[Freshness]:
    """Every secret variable held as a reference, with whether it is stale.

    Stale: no successful refresh for ``stale_after`` seconds, and the last refresh
    failed. An API that sat idle has refreshes that are due, not failing: reading each
    value here, as a request would, starts them (in the background), and the secret is
    stale only if one of them fails.
    """
    now = time.time() if now is None else now
    out: list[Freshness] = []
    for variable in SECRET_VARIABLES:
        if not settings.has_secret(variable):
            continue
        live = settings.secret(variable)
        live.get()  # a cached read: wakes the refresher when the TTL has passed, never waits on it
        health = live.health()
        if health is None or health.refreshed_at is None:
            continue  # a plain value: nothing to refresh
        since = max(0.0, now - health.refreshed_at)
        age = max(0.0, now - health.created) if health.created is not None else None
        out.append(
            Freshness(
                variable,
                since,
                age,
                health.region,
                since > stale_after and health.failing,
                health.attempts,
                health.failures,
            )
        )
    return out


class _SecretLayer(Collector):
    def __init__(self, settings: Settings, stale_after: float, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._stale_after = stale_after
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        return iter(())  # described when collected: the label values are only known then

    def collect(self) -> Iterator[Metric]:
        rows = freshness(self._settings, self._stale_after, self._clock())
        age = _gauge(t.VALUE_AGE)
        since = _gauge(t.SINCE_REFRESH)
        stale = _gauge(t.STALE)
        region = _gauge(t.SERVED_REGION)
        attempts = _counter(t.REFRESH_ATTEMPTS)
        failures = _counter(t.REFRESH_FAILURES)
        for row in rows:
            since.add_metric([row.variable], row.since_refresh)
            stale.add_metric([row.variable], 1.0 if row.stale else 0.0)
            if row.age is not None:
                age.add_metric([row.variable], row.age)
            if row.region:
                region.add_metric([row.variable, row.region], 1.0)
            attempts.add_metric([row.variable], row.attempts)
            for cause, count in sorted(row.failures.items()):
                failures.add_metric([row.variable, cause], count)
        threshold = _gauge(t.STALE_THRESHOLD)
        threshold.add_metric([], self._stale_after)
        yield from (age, since, stale, threshold, attempts, failures, region)
        stats = self._settings.stats
        for metric in t.METRICS:
            if metric.kind != "counter" or metric in (t.REFRESH_ATTEMPTS, t.REFRESH_FAILURES):
                continue
            family = _counter(metric)
            counts = stats.counts(metric)
            if not metric.labels:
                family.add_metric([], counts.get((), 0))  # a zero is news too: nothing refused
            for labels, count in sorted(counts.items()):
                if labels:
                    family.add_metric(list(labels), count)
            yield family


def _gauge(metric: t.Metric) -> GaugeMetricFamily:
    return GaugeMetricFamily(metric.name, metric.help, labels=list(metric.labels))


def _counter(metric: t.Metric) -> CounterMetricFamily:
    # prometheus_client adds the _total suffix itself.
    return CounterMetricFamily(metric.name.removesuffix("_total"), metric.help, labels=list(metric.labels))


def registry(settings: Settings, stale_after: float) -> CollectorRegistry:
    """A registry of this app's metrics only (each app its own, so two apps never mix counts)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_SecretLayer(settings, stale_after))
    return reg


# How long a new connection at the cap waits for the one closed to make room to give its slot back.
EVICT_WAIT_SECONDS = 1.0


class _Handler(MetricsHandler):
    """prometheus_client's handler, one request per connection (HTTP/1.0), and silent."""

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client left, or its connection was shut down at its deadline
            pass


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, as prometheus_client's server, but at most ``max_connections`` of
    them, each closed ``timeout`` seconds after it was accepted whatever it sent. At the cap, the
    connection open longest is closed to make room for the new one: a scrape takes milliseconds,
    so connections held idle cannot keep Prometheus out."""

    daemon_threads = True
    block_on_close = False
    # The listen backlog (socketserver's default is 5): connections the accept thread has not taken
    # yet wait there, so a burst of them is closed to make room, never timed out by the kernel.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[_Handler], timeout: float, max_connections: int) -> None:
        self.connection_timeout = timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._deadlines: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._refused = CountedLine(log, logging.WARNING)
        self._evicted = CountedLine(log, logging.WARNING)
        self._accept_failed = CountedLine(log, logging.ERROR)
        self.address_family = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)[0][0]
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in RESOURCE_ERRNOS:
                self._accept_failed.note(
                    "the metrics listener cannot accept connections: %s", exc.strerror or type(exc).__name__
                )
                time.sleep(0.1)  # the listener stays readable: without a pause this thread spins
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                oldest = min(self._deadlines, key=self._deadlines.__getitem__, default=None)
            if oldest is not None:
                _shut(oldest)  # its thread ends and gives its slot back
            if not self._slots.acquire(timeout=EVICT_WAIT_SECONDS):
                self._refused.note(
                    "%d connections open to the metrics listener, its cap: refused a new one", self.max_connections
                )
                self.shutdown_request(request)
                return
            self._evicted.note(
                "%d connections open to the metrics listener, its cap: closed the one open longest for a new one",
                self.max_connections,
            )
        with self._lock:
            self._deadlines[request] = time.monotonic() + self.connection_timeout
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            self.shutdown_request(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _done(self, request: socket.socket) -> None:
        with self._lock:
            if self._deadlines.pop(request, None) is None:
                return
        self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for any connection that failed: a client that
        # left, or one shut down at its deadline, is no error of the API's.
        log.debug("a metrics connection failed", exc_info=True)

    def service_actions(self) -> None:
        # serve_forever calls this at least every poll interval (0.5 s): close what is past its deadline.
        now = time.monotonic()
        with self._lock:
            late = [request for request, deadline in self._deadlines.items() if deadline <= now]
        for request in late:
            _shut(request)


def _shut(request: socket.socket) -> None:
    try:
        request.shutdown(socket.SHUT_RDWR)  # its thread's read or write ends, and it closes it
    except OSError:
        pass


class MetricsServer:
    """The metrics listener, on a daemon thread: prometheus_client's handler behind a server that
    bounds its connections (``ECOMIND_METRICS_TIMEOUT``, ``ECOMIND_METRICS_MAX_CONNECTIONS``)."""

    def __init__(self, reg: CollectorRegistry, host: str, port: int, timeout: float, max_connections: int) -> None:
        handler = type("Handler", (_Handler,), {"registry": reg, "timeout": timeout})
        self._server = _BoundedServer((host, port), handler, timeout, max_connections)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        self.port = int(self._server.server_address[1])
        self.host = host

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class EmfReporter:
    """Every ``interval`` seconds, one EMF line per secret variable on stdout (aws-lambda-powertools)."""

    def __init__(self, settings: Settings, stale_after: float, interval: float) -> None:
        self._settings = settings
        self._stale_after = stale_after
        self._interval = interval
        self._stop = threading.Event()
        self._reported: dict[str, int] = {}  # failures already reported, per variable
        self._thread = threading.Thread(target=self._run, name="emf-reporter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.report()
            except Exception:  # a metrics line must never take the API down
                log.exception("writing the EMF metrics failed")

    def report(self) -> None:
        """Write the lines now: seconds since refresh, and the refresh failures since the last line."""
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        units = {"Seconds": MetricUnit.Seconds, "Count": MetricUnit.Count}
        environment = self._settings.environment
        for row in freshness(self._settings, self._stale_after):
            failures = sum(row.failures.values())
            new = failures - self._reported.get(row.variable, 0)
            self._reported[row.variable] = failures
            dimensions = {"Environment": environment, "Variable": row.variable}
            for cw, value in ((t.CW_SINCE_REFRESH, row.since_refresh), (t.CW_REFRESH_FAILURES, float(new))):
                with single_metric(
                    name=cw.name,
                    unit=units[cw.unit],
                    value=value,
                    namespace=t.EMF_NAMESPACE,
                    default_dimensions=dimensions,
                ):
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
