"""The metrics one replica publishes, on ``prometheus_client``.

Each replica (or test loop) owns one :class:`Registry`, a facade over its own
``prometheus_client.CollectorRegistry`` (never the global default one), so
several replicas in one process do not collide. The engine asks it for
counters and gauges by name and uses them as ``prometheus_client`` metrics.
"""
from __future__ import annotations

import re
import threading
import typing as t
from collections.abc import Callable

import prometheus_client
from prometheus_client import registry as prometheus_registry

_NAME = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')

#: the text exposition format /metrics answers in
CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

Metric = prometheus_client.Counter | prometheus_client.Gauge


class _WithoutCreated:
    """The registry's families minus the counters' ``*_created`` samples.

    ``prometheus_client`` adds a creation-time series to every counter; the
    names freezer-dr publishes are only the ones it declares.
    """

    def __init__(self, registry: prometheus_registry.CollectorRegistry):
        self._registry = registry

    def collect(self):
        for family in self._registry.collect():
            if family.type == 'counter':
                family.samples = [s for s in family.samples
                                  if not s.name.endswith('_created')]
            yield family


class Registry:
    """The metrics of one replica; get-or-create by name."""

    def __init__(self) -> None:
        self.collectors = prometheus_registry.CollectorRegistry()
        self._lock = threading.Lock()
        self._metrics: dict[str, Metric] = {}

    def _get_or_create(self, cls: type, name: str,
                       factory: Callable[[], Metric]) -> t.Any:
        if not _NAME.match(name):
            raise ValueError(f'invalid metric name {name!r}')
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = factory()
            elif type(metric) is not cls:
                raise ValueError(f'metric {name} is already a '
                                 f'{type(metric).__name__.lower()}')
            return metric

    def counter(self, name: str, help_text: str,
                labels: t.Sequence[str] = ()) -> prometheus_client.Counter:
        """The counter ``name`` (ending in ``_total``), made on first use."""
        if not name.endswith('_total'):
            raise ValueError(f'counter name {name!r} must end in _total')
        return self._get_or_create(
            prometheus_client.Counter, name,
            lambda: prometheus_client.Counter(
                name, help_text, labels, registry=self.collectors))

    def gauge(self, name: str, help_text: str,
              func: Callable[[], float] | None = None,
              labels: t.Sequence[str] = ()) -> prometheus_client.Gauge:
        """The gauge ``name``, made on first use (``func``: read at scrape)."""
        if func is not None and labels:
            raise ValueError(f'gauge {name}: a live function has no labels')

        def make() -> prometheus_client.Gauge:
            gauge = prometheus_client.Gauge(name, help_text, labels,
                                            registry=self.collectors)
            if func is not None:
                gauge.set_function(func)
            return gauge
        return self._get_or_create(prometheus_client.Gauge, name, make)

    def value(self, name: str,
              labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (None if it has none yet)."""
        return self.collectors.get_sample_value(name, labels or {})

    def render(self) -> str:
        """All metrics in the Prometheus text exposition format 0.0.4."""
        return prometheus_client.generate_latest(
            _WithoutCreated(self.collectors)).decode()
