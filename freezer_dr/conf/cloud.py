"""[cloud]: how freezer-dr reaches the OpenStack APIs (clouds.yaml, timeout,
compute microversion)."""
from oslo_config import cfg

GROUP = cfg.OptGroup('cloud', title='OpenStack credentials',
                     help='The clouds.yaml entry freezer-dr acts as.')

OPTS = [
    cfg.StrOpt('cloud', default='envvars',
               help='Name of the cloud in clouds.yaml ("envvars" reads '
                    'OS_* variables).'),
    cfg.StrOpt('clouds_yaml',
               help='Path of clouds.yaml. Defaults to the openstacksdk '
                    'search path.'),
    cfg.StrOpt('region_name', help='Region to use.'),
    cfg.FloatOpt('api_timeout', default=5.0, min=0.5,
                 deprecated_opts=[cfg.DeprecatedOpt('api_timeout',
                                                    group='evacuation')],
                 help='Seconds one OpenStack API call may take as a whole, '
                      'from connecting to the last byte of the answer '
                      'however slowly the server sends it: a read request, '
                      'or a Nova write with any Keystone re-authentication '
                      'and version discovery it needs. A Nova write starts '
                      'only while the leader lease outlives it and is '
                      'abandoned unsent past it, so it must stay below '
                      '[coordination] lease_ttl minus safety_margin.'),
    cfg.StrOpt('compute_microversion', default='2.94',
               deprecated_opts=[cfg.DeprecatedOpt('microversion',
                                                  group='evacuation')],
               help='Compute API microversion of every Nova call. 2.94 is '
                    'the last one where evacuate restarts an ACTIVE '
                    'server.'),
]
