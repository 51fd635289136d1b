"""[engine]: the leader loop, its safety gates and recovery pacing."""
from oslo_config import cfg

GROUP = cfg.OptGroup('engine', title='Leader loop and safety gates',
                     help='How often the leader looks, and when it holds '
                          'back.')

OPTS = [
    cfg.FloatOpt('poll_interval', default=1.0, min=0.1,
                 help='Seconds from the start of one cycle of the leader '
                      'loop to the next (one look at Nova\'s service list '
                      'a cycle): how late a BMC reading OFF may be seen. '
                      'A quiet host that reaches its missed heartbeats '
                      'between two cycles is looked at right then.'),
    cfg.IntOpt('max_failed_hosts', default=3, min=1,
               help='Storm guard: if more hosts than this are down at '
                    'once, hold them all, alert admins and fence nothing.'),
    cfg.FloatOpt('max_failed_percent', default=30.0, min=0.0, max=100.0,
                 help='Storm guard: if more than this percentage of the '
                      'hosts are down at once, hold them all. A single '
                      'host down is never a storm.'),
    cfg.FloatOpt('storm_window', default=60.0, min=0.0,
                 help='Storm guard: hosts whose recovery started within '
                      'this many seconds still count as down, so hosts '
                      'failing one after the other (a stalled message bus '
                      'makes Nova call them down one by one) are a storm '
                      'too; so do the hosts of a storm for this long after '
                      'it ends, so the last of them to come back is not '
                      'taken for a single failure.'),
    cfg.IntOpt('max_parallel_hosts', default=2, min=1,
               help='At most this many hosts are recovered at once; the '
                    'others wait their turn.'),
    cfg.FloatOpt('fence_retry_initial', default=10.0, min=0.1,
                 help='Seconds before fencing a held host again after a '
                      'failed fence; doubles each time.'),
    cfg.FloatOpt('fence_retry_max', default=300.0, min=1.0,
                 help='Upper bound of the fencing retry backoff.'),
    cfg.IntOpt('notify_attempts', default=5, min=1,
               help='Attempts to deliver one notification before the '
                    'recovery records it as failed.'),
    cfg.IntOpt('history_size', default=200, min=1,
               help='Finished recoveries kept in the history.'),
    cfg.FloatOpt('blind_handover_after', default=30.0, min=1.0,
                 help='A leader that has been unable to see the cloud for '
                      'this many seconds hands leadership to a standby '
                      'that sees it (never to one that is blind too). '
                      'Standbys look at the compute API every '
                      'min(10, blind_handover_after / 3) seconds. At least '
                      '[coordination] lease_ttl.'),
]
