"""[api]: the per-replica HTTP endpoint (/healthz, /leader, /metrics)."""
from oslo_config import cfg

GROUP = cfg.OptGroup('api', title='Per-replica HTTP endpoint',
                     help='Health, leadership and metrics of this replica.')

OPTS = [
    cfg.HostAddressOpt('bind_host', default='127.0.0.1',
                       help='Address the HTTP endpoint listens on.'),
    cfg.PortOpt('bind_port', default=9393,
                help='Port the HTTP endpoint listens on (0: pick a free '
                     'port and log it).'),
    cfg.BoolOpt('enabled', default=True,
                help='Serve the HTTP endpoint.'),
]
