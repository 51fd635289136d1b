"""Run a process with its wall clock skewed, through libfaketime.

Clock skew between controllers is a wall-clock (CLOCK_REALTIME) offset;
monotonic clocks are per boot and never skewed between machines.
libfaketime is therefore told to leave them alone, which also keeps it
from breaking Python's timed waits (with a faked CLOCK_MONOTONIC,
``threading.Event.wait(0.5)`` never returns).
"""
from __future__ import annotations

import glob

#: where Debian and others put libfaketime (the thread-safe build)
FAKETIME_GLOBS = ('/usr/lib/*/faketime/libfaketimeMT.so.1',
                  '/usr/lib/faketime/libfaketimeMT.so.1',
                  '/usr/local/lib/faketime/libfaketimeMT.so.1')
MISSING = 'libfaketime is not installed (apt-get install libfaketime)'


def faketime_lib() -> str | None:
    """Path of libfaketime, or None when it is not installed."""
    for pattern in FAKETIME_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def faketime_env(offset: str) -> dict[str, str]:
    """Environment that runs a process ``offset`` (``+30s``, ``-90m``)
    off the wall clock; its monotonic clock stays true (as under NTP
    skew)."""
    lib = faketime_lib()
    if lib is None:
        raise RuntimeError(MISSING)
    return {'LD_PRELOAD': lib, 'FAKETIME': offset,
            'FAKETIME_DONT_FAKE_MONOTONIC': '1', 'FAKETIME_NO_CACHE': '1'}
