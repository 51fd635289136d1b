"""[cloud]: how freezer-dr reaches the OpenStack APIs (clouds.yaml)."""
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
                 help='Seconds one API request may take, from connecting '
                      'to the last byte of the answer, however slowly the '
                      'server sends it.'),
]
