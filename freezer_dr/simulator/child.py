"""Child processes: start one that announces readiness by writing a JSON
file; stop one (the one way every launcher here stops its processes)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import typing as t


class ChildError(RuntimeError):
    """The child exited, or did not get ready in time."""


def log_tail(path: str, lines: int = 20) -> str:
    """The last ``lines`` of a child's log file ('' if unreadable)."""
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0,
                 signum: int = signal.SIGTERM) -> int | None:
    """SIGCONT and ``signum`` (a stopped process cannot exit), SIGKILL
    if it has not exited after ``timeout``; its exit code (None: none)."""
    return stop_processes([proc], timeout, signum)[0]


def stop_processes(procs: t.Sequence[subprocess.Popen | None],
                   timeout: float = 10.0, signum: int = signal.SIGTERM
                   ) -> list[int | None]:
    """:func:`stop_process` for several at once: all are signalled first,
    so they wind down together within one ``timeout``."""
    live = [p for p in procs if p is not None and p.poll() is None]
    for proc in live:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signum)
    deadline = time.monotonic() + timeout
    for proc in live:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return [None if p is None else p.returncode for p in procs]


def spawn_and_wait(argv: list[str], ready_file: str, log_file: str,
                   timeout: float, what: str
                   ) -> tuple[subprocess.Popen, dict[str, t.Any]]:
    """Start ``argv`` (output to ``log_file``), wait for ``ready_file``.

    Returns the process and the ready file's JSON. The child must write
    the file atomically (temporary file + rename). Raises ChildError
    naming ``what`` and the log; a child that is late is stopped first.
    """
    if os.path.exists(ready_file):
        os.unlink(ready_file)
    with open(log_file, 'ab') as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready_file):
        if proc.poll() is not None:
            raise ChildError(f'{what} exited with {proc.returncode}; see '
                             f'{log_file}')
        if time.monotonic() > deadline:
            stop_process(proc)
            raise ChildError(f'{what} not ready in {timeout:.0f} s; see '
                             f'{log_file}')
        time.sleep(0.05)
    with open(ready_file, encoding='utf-8') as f:
        return proc, json.load(f)
