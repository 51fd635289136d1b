"""The leader loop: one cycle observes, decides and dispatches.

(Placeholder until the recovery pipeline lands: it cannot observe.)
"""
from __future__ import annotations


class LeaderLoop:
    """Runs one leader cycle at a time and says what it did."""

    def __init__(self, conf, lease, store) -> None:
        self.conf = conf
        self.lease = lease
        self.store = store

    def run_cycle(self) -> str:
        """One cycle; returns the sentence that describes it."""
        return 'cannot observe: no monitor configured; taking no action'

    def stop(self) -> None:
        """Cancel in-flight work before its next side effect."""


def build(conf, lease, store) -> LeaderLoop:
    """The leader loop for this configuration."""
    return LeaderLoop(conf, lease, store)
