"""[monitor] and [monitor_nova]: how failed hosts are detected."""
from oslo_config import cfg

GROUP = cfg.OptGroup('monitor', title='Failure detection',
                     help='Which monitor reports host state, and how long '
                          'a host must look down before it counts.')

OPTS = [
    cfg.StrOpt('driver', default='nova',
               help='Monitor plugin (entry point in freezer_dr.monitors).'),
    cfg.FloatOpt('confirm_window', default=0.0, min=0.0,
                 help='Extra seconds a suspect host must be watched down '
                      'without a break before it is recovered, on top of '
                      'the missed heartbeats that made it a suspect (0: '
                      'those are the confirmation). Only time a leader '
                      'actually watched counts: the watched time is '
                      'checkpointed (it survives a quick failover), and a '
                      'gap in watching restarts the window. A BMC that '
                      'reads the host OFF skips it.'),
]

NOVA_GROUP = cfg.OptGroup('monitor_nova', title='Nova monitor',
                          help='Evidence the nova monitor gathers.')

NOVA_OPTS = [
    cfg.BoolOpt('check_hypervisor', default=False,
                help='Also read each hypervisor\'s state.'),
    cfg.BoolOpt('check_network_agent', default=False,
                help='Also read the liveness of each host\'s Neutron '
                     'agent.'),
    cfg.StrOpt('rule', default='service', choices=['service', 'all', 'any'],
               help='When a host is down: "service" (nova-compute service '
                    'down), "all" (every enabled source says down, as the '
                    'original freezer-dr did) or "any" (one source '
                    'suffices).'),
    cfg.FloatOpt('stale_after', default=0.0, min=0.0,
                 help='Also count a host down when its service heartbeat '
                      '(updated_at) is older than this many seconds; 0 '
                      'trusts Nova\'s own state.'),
    cfg.IntOpt('missed_heartbeats', default=3, min=1,
               help='A host is suspected down once its compute service '
                    'has missed this many heartbeats in a row, even while '
                    'Nova still calls it up (Nova waits service_down_time, '
                    '60 s by default). The period is learned per host from '
                    'its updated_at changes.'),
    cfg.FloatOpt('report_interval', default=10.0, min=0.5,
                 help='Heartbeat period assumed for a host until its own '
                      'is learned: Nova\'s [DEFAULT] report_interval.'),
]
