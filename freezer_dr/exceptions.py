"""The few exceptions that cross module boundaries.

Drivers translate their library's errors into these at their edge; the
engine decides what each one means for a recovery.
"""


class FreezerDRError(Exception):
    """Base class of every freezer-dr error."""


class ConfigError(FreezerDRError):
    """Configuration or inventory is invalid; the service refuses to start."""


class LeadershipLost(FreezerDRError):
    """This replica is not (or no longer) the leader with time on its lease."""


class StaleEpoch(LeadershipLost):
    """A fenced write was rejected: another leader has taken over."""


class StaleRecord(LeadershipLost):
    """A checkpoint was rejected: the record changed since it was read.

    The writer holds an out-of-date copy; it must stop and let the next
    cycle read the record afresh.
    """


class GateClosed(FreezerDRError):
    """A gate closed (pause, storm, blind) right before a power command."""


class GuardUnsatisfiable(FreezerDRError):
    """A side effect whose time budget can never fit in the lease."""


class StoreUnavailable(FreezerDRError):
    """etcd could not be reached in time."""


class MonitorUnavailable(FreezerDRError):
    """The monitor's source cannot be read: the engine is blind.

    ``judged``: the source answered, but what it said cannot be trusted
    (no hosts, hosts vanished, heartbeats stopped everywhere at once): no
    other replica would see better, so this is no reason to hand over.
    """

    def __init__(self, message: str = '', *, judged: bool = False) -> None:
        super().__init__(message)
        self.judged = judged


class FenceFailed(FreezerDRError):
    """A node could not be verified powered off.

    ``power`` is the last power state the level read before it failed
    ('on', 'off' or None when it read none), at wall time ``seen_at``: a
    level that saw the node ON tells the engine, so no older evidence of
    power-off counts afterwards (S1).
    """

    def __init__(self, message: str = '', *, power: str | None = None,
                 seen_at: float | None = None) -> None:
        super().__init__(message)
        self.power = power
        self.seen_at = seen_at


class EvacuationFailed(FreezerDRError):
    """An evacuation request was refused or the instance ended in error."""


class CloudUnavailable(FreezerDRError):
    """The cloud API could not be reached or answered with a server error."""


class NotifyFailed(FreezerDRError):
    """A notification could not be delivered."""
