"""[fencing]: the fencing inventory and BMC timing."""
from oslo_config import cfg

DEFAULT_INVENTORY = '/etc/freezer-dr/nodes.yaml'

GROUP = cfg.OptGroup('fencing', title='Fencing',
                     help='How failed nodes are powered off and verified.')

OPTS = [
    cfg.StrOpt('inventory', default=DEFAULT_INVENTORY,
               help='Fencing inventory (YAML): per compute host, its '
                    'fencing levels in order.'),
    cfg.FloatOpt('timeout', default=30.0, min=1.0,
                 help='Seconds one fencing level of one node may take. '
                      'Each level has its own budget, so a slow level '
                      'never keeps the next one from being tried.'),
    cfg.FloatOpt('call_timeout', default=5.0, min=0.1,
                 help='Hard deadline in seconds around every single BMC '
                      'or hypervisor call.'),
    cfg.FloatOpt('power_off_timeout', default=20.0, min=0.5,
                 help='Seconds to wait for a node to read back "off" '
                      'after the off command.'),
    cfg.FloatOpt('poll_interval', default=0.25, min=0.01,
                 help='Seconds between power read-backs while waiting '
                      'for a node to report "off".'),
    cfg.FloatOpt('soft_shutdown_timeout', default=0.0, min=0.0,
                 help='If above 0, ask the node for a soft shutdown and '
                      'wait up to this long before the hard power-off.'),
    cfg.FloatOpt('check_interval', default=300.0, min=0.0,
                 help='Fencing readiness: every this many seconds the '
                      'leader reads the power state of every fencing level '
                      'of every host (never a power command), spread over '
                      'the interval, so a wrong password or a wrong '
                      'inventory entry is found before the host fails. '
                      '0 turns it off.'),
    cfg.IntOpt('check_concurrency', default=4, min=1,
               help='Fencing readiness: at most this many power reads at '
                    'once.'),
]
