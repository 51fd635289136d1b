"""A single background thread that runs timed state changes in order.

Evacuations, boots and power-state changes of the simulated cloud are
scheduled here instead of one timer thread each, so ten thousand
evacuations cost one thread.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
import typing as t

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class EventQueue:
    """Run callables at wall-clock times, one at a time, under ``lock``."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._heap: list[tuple[float, int, t.Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='sim-events')

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def at(self, when: float, fn: t.Callable[[], None]) -> None:
        """Run ``fn()`` (holding the state lock) at wall time ``when``."""
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), fn))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _next_due(self) -> t.Callable[[], None] | None:
        with self._cond:
            while not self._stopped:
                if self._heap:
                    delay = self._heap[0][0] - time.time()
                    if delay <= 0:
                        return heapq.heappop(self._heap)[2]
                    self._cond.wait(delay)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        while True:
            fn = self._next_due()
            if fn is None:
                return
            with self._lock:
                try:
                    fn()
                except Exception:  # noqa: BLE001 - keep the clock running
                    # A bug in one simulated event must not freeze the
                    # whole cloud; it is logged with its traceback.
                    LOG.exception('simulated event %r failed', fn)
