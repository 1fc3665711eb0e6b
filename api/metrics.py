"""Prometheus metrics at /metrics.

Counts, data age and control state are read from the database at each scrape, so they hold
for decisions made by any process (CLI included). Node latencies are those of the decisions
this process made.
"""

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from api.health import HealthReport
from core.decision import Decision
from storage.decisions import DecisionStore

# From under a millisecond (one node) to seconds (a slow decision), in seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTROL_STATES = ("ACTIVE", "PAUSED", "HALTED")


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._node_latency = Histogram(
            "sigmax_node_latency_seconds",
            "Time each decision-path node took, for decisions made by this process",
            ["node"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, decision: Decision) -> None:
        for node, milliseconds in decision.timings_ms.items():
            self._node_latency.labels(node).observe(milliseconds / 1000.0)

    def watch(self, decisions: DecisionStore, health: Callable[[], HealthReport]) -> None:
        """Report, at each scrape, the stored counts and what the health report says."""
        self.registry.register(_StoredState(decisions, health))


class _StoredState(Collector):
    def __init__(self, decisions: DecisionStore, health: Callable[[], HealthReport]) -> None:
        self._decisions = decisions
        self._health = health

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        counts = CounterMetricFamily(
            "sigmax_decisions",
            "Decisions stored, by the action that stood after the gate and the gate's verdict",
            labels=["action", "verdict"],
        )
        for action, verdict, count in self._decisions.counts():
            counts.add_metric([action, verdict], count)
        yield counts

        report = self._health()
        age = GaugeMetricFamily(
            "sigmax_data_age_seconds",
            "Market-clock seconds since the newest stored candle of each series closed",
            labels=["symbol", "timeframe"],
        )
        for feed in report.components.feeds:
            if feed.age_seconds is not None:
                age.add_metric([feed.symbol, feed.timeframe], feed.age_seconds)
        yield age

        control = GaugeMetricFamily(
            "sigmax_control_state",
            "1 for the control state in force in each scope (global, or a symbol's own)",
            labels=["scope", "state"],
        )
        scopes = report.components.control.scopes
        if not any(scope.symbol is None for scope in scopes):
            control.add_metric(["global", "ACTIVE"], 1.0)
        for scope in scopes:
            for state in CONTROL_STATES:
                control.add_metric([scope.symbol or "global", state], float(scope.state == state))
        yield control

        scheduler = report.components.scheduler
        if scheduler is None:
            return
        yield CounterMetricFamily(
            "sigmax_scheduler_decisions",
            "Decisions the scheduler made since start",
            value=scheduler.decisions,
        )
        yield CounterMetricFamily(
            "sigmax_scheduler_errors", "Scheduled decisions that failed", value=scheduler.errors
        )
        yield CounterMetricFamily(
            "sigmax_scheduler_skipped_candles",
            "Candle closes skipped because the scheduler fell behind the pace",
            value=scheduler.skipped_candles,
        )
        yield GaugeMetricFamily(
            "sigmax_scheduler_running", "1 while the scheduler runs", value=float(scheduler.running)
        )
