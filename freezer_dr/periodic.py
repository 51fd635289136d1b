"""A daemon thread that does one thing every so many seconds until
stopped: the replica's cloud sight and its systemd watchdog pings."""
from __future__ import annotations

import threading
import typing as t


class Periodic:
    """Calls ``tick()`` at once, then every ``period`` seconds after the
    last call ended, until :meth:`stop`."""

    def __init__(self, name: str, period: float,
                 tick: t.Callable[[], object],
                 join_timeout: float | None = None) -> None:
        """``join_timeout``: how long :meth:`stop` waits for a tick under
        way (None: until it ends)."""
        self.name = name
        self.period = period
        self._tick = tick
        self._join_timeout = join_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Periodic:
        self._thread = threading.Thread(target=self._run, name=self.name,
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._join_timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._tick()
            self._stop.wait(self.period)
