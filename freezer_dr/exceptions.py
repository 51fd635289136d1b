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


class StoreUnavailable(FreezerDRError):
    """etcd could not be reached in time."""


class MonitorUnavailable(FreezerDRError):
    """The monitor's source cannot be read: the engine is blind."""


class FenceFailed(FreezerDRError):
    """A node could not be verified powered off."""


class EvacuationFailed(FreezerDRError):
    """An evacuation request was refused or the instance ended in error."""


class CloudUnavailable(FreezerDRError):
    """The cloud API could not be reached or answered with a server error."""


class NotifyFailed(FreezerDRError):
    """A notification could not be delivered."""
