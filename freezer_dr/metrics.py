"""A tiny Prometheus text-format registry of counters and gauges.

The replica creates one :class:`Registry` and hands it to whoever wants to
publish figures (the API serves it at ``/metrics``; the engine may add its
own counters). A gauge may read its value from a function at scrape time.
"""
from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable

_NAME = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
_LABEL = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')

Labels = tuple[tuple[str, str], ...]


def _label_key(labels: dict[str, str] | None) -> Labels:
    if not labels:
        return ()
    for name in labels:
        if not _LABEL.match(name):
            raise ValueError(f'invalid metric label name {name!r}')
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _escape_help(value: str) -> str:
    return value.replace('\\', '\\\\').replace('\n', '\\n')


def _escape_label(value: str) -> str:
    return _escape_help(value).replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class _Metric:
    """A named family of samples, one per label set."""

    kind = 'untyped'

    def __init__(self, name: str, help_text: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f'invalid metric name {name!r}')
        self.name = name
        self.help = help_text
        self._lock = threading.Lock()
        self._values: dict[Labels, float] = {}

    def get(self, labels: dict[str, str] | None = None) -> float:
        """Current value of the sample with these labels (0 if unset)."""
        with self._lock:
            return self._values.get(_label_key(labels), 0.0)

    def samples(self) -> list[tuple[Labels, float]]:
        with self._lock:
            return sorted(self._values.items())

    def render(self) -> str:
        lines = [f'# HELP {self.name} {_escape_help(self.help)}',
                 f'# TYPE {self.name} {self.kind}']
        for labels, value in self.samples():
            label_text = ''
            if labels:
                label_text = '{' + ','.join(
                    f'{k}="{_escape_label(v)}"' for k, v in labels) + '}'
            lines.append(f'{self.name}{label_text} {_format_value(value)}')
        return '\n'.join(lines) + '\n'


class Counter(_Metric):
    """A value that only goes up."""

    kind = 'counter'

    def inc(self, amount: float = 1.0,
            labels: dict[str, str] | None = None) -> None:
        if amount < 0:
            raise ValueError('a counter cannot decrease')
        key = _label_key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    """A value that goes up and down, set directly or read at scrape."""

    kind = 'gauge'

    def __init__(self, name: str, help_text: str,
                 func: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text)
        self._func = func

    def set(self, value: float, labels: dict[str, str] | None = None) -> None:
        with self._lock:
            self._values[_label_key(labels)] = float(value)

    def inc(self, amount: float = 1.0,
            labels: dict[str, str] | None = None) -> None:
        key = _label_key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def samples(self) -> list[tuple[Labels, float]]:
        if self._func is not None:
            return [((), float(self._func()))]
        return super().samples()

    def get(self, labels: dict[str, str] | None = None) -> float:
        if self._func is not None:
            return float(self._func())
        return super().get(labels)


class Registry:
    """The metrics one process publishes; get-or-create by name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}

    def _get_or_create(self, cls: type[_Metric], name: str,
                       factory: Callable[[], _Metric]) -> _Metric:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = factory()
                self._metrics[name] = metric
            elif type(metric) is not cls:
                raise ValueError(f'metric {name} is already a '
                                 f'{metric.kind}')
            return metric

    def counter(self, name: str, help_text: str) -> Counter:
        """The counter ``name``, created on first use."""
        metric = self._get_or_create(
            Counter, name, lambda: Counter(name, help_text))
        assert isinstance(metric, Counter)
        return metric

    def gauge(self, name: str, help_text: str,
              func: Callable[[], float] | None = None) -> Gauge:
        """The gauge ``name``, created on first use (``func``: read live)."""
        metric = self._get_or_create(
            Gauge, name, lambda: Gauge(name, help_text, func))
        assert isinstance(metric, Gauge)
        return metric

    def render(self) -> str:
        """All metrics in the Prometheus text exposition format 0.0.4."""
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda m: m.name)
        return ''.join(m.render() for m in metrics)


CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
