"""One overall deadline for a network conversation (an SMTP session, an
HTTP call with its re-authentication), enforced on its sockets.

Library timeouts bound each socket operation, not the conversation: a
peer that answers slowly, or dribbles a byte at a time, keeps a call
alive far past its budget. A :class:`Deadline` bounds every operation by
the time left and, at the deadline, shuts down every socket it watches
(one reaper thread for the process), so a blocked read returns at once
and the call ends with an error by the deadline, whatever the peer does.
"""
from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time


class DeadlineExceeded(Exception):
    """A conversation's overall deadline passed.

    Deliberately not an ``OSError`` nor a ``requests`` / keystoneauth
    error: no library catches it to retry (and sleep) past the deadline.
    Drivers translate it at their edge (``CloudUnavailable``,
    ``NotifyFailed``).
    """


class Deadline:
    """``seconds`` from now; every socket given to :meth:`watch` is shut
    down when they are over. Use as a context manager (or call
    :meth:`close`) so the watched sockets are released."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._fired = False
        self._closed = False

    # -- time ----------------------------------------------------------------
    def remaining(self) -> float:
        """Seconds left (0 once over)."""
        if self._fired:
            return 0.0
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def check(self, what: str) -> None:
        """Raise :class:`DeadlineExceeded` if the deadline is over."""
        if self.expired:
            raise DeadlineExceeded(
                f'{what}: timed out, past the deadline of {self.seconds:g} s')

    def bound(self, timeout: float | None, what: str) -> float:
        """``timeout`` capped by the time left; raises once over."""
        left = self.remaining()
        if left <= 0.0:
            raise DeadlineExceeded(
                f'{what}: timed out, past the deadline of {self.seconds:g} s')
        return left if timeout is None else min(timeout, left)

    # -- sockets -------------------------------------------------------------
    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock``'s connection down at the deadline.

        A duplicate of its descriptor is kept, so this holds across a TLS
        wrap (which moves the descriptor to a new object) and can never
        touch a descriptor number the caller closed and the OS reused.
        """
        twin = socket.socket(fileno=_dup(sock))
        with self._lock:
            if self._closed or self._fired:
                late = True
            else:
                late = False
                self._watched.append(twin)
        if late:
            _shutdown(twin)
            twin.close()
            return
        _REAPER.add(self)

    def fire(self) -> None:
        """Shut every watched socket down now (the reaper calls this)."""
        with self._lock:
            if self._closed:
                return
            self._fired = True
            for twin in self._watched:
                _shutdown(twin)

    def close(self) -> None:
        """Stop watching; release the duplicated descriptors."""
        with self._lock:
            self._closed = True
            watched, self._watched = self._watched, []
        for twin in watched:
            twin.close()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dup(sock: socket.socket) -> int:
    return os.dup(sock.fileno())


def _shutdown(twin: socket.socket) -> None:
    try:
        twin.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass        # already closed by the peer, or never connected


class _Reaper:
    """One daemon thread firing deadlines that have watched sockets."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.expires_at,
                                        next(self._seq), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name='deadline-reaper')
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    when, _, deadline = self._heap[0]
                    delay = when - time.monotonic()
                    if delay <= 0:
                        heapq.heappop(self._heap)
                        break
                    self._cond.wait(delay)
            deadline.fire()


_REAPER = _Reaper()
