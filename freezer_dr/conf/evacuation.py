"""[evacuation]: which instances move, how many at once, how long to wait."""
from oslo_config import cfg

GROUP = cfg.OptGroup('evacuation', title='Evacuation',
                     help='How instances of a failed host are evacuated.')

OPTS = [
    cfg.StrOpt('driver', default='nova',
               help='Evacuator plugin (entry point in '
                    'freezer_dr.evacuators).'),
    cfg.IntOpt('max_parallel', default=16, min=1,
               help='Evacuations in flight at once, per host.'),
    cfg.FloatOpt('instance_timeout', default=300.0, min=1.0,
                 help='Seconds one evacuation may take before it counts '
                      'as failed.'),
    cfg.IntOpt('max_attempts', default=3, min=1,
               help='Evacuation attempts per instance before it is '
                    'reported failed.'),
    cfg.FloatOpt('poll_interval', default=1.0, min=0.05,
                 help='Seconds between two looks at evacuating servers.'),
    cfg.StrOpt('selection', default='all', choices=['all', 'marked'],
               help='"all": evacuate every instance, HA-marked ones first; '
                    '"marked": only instances marked by ha_metadata_key '
                    'or ha_tag.'),
    cfg.StrOpt('ha_metadata_key', default='HA_Enabled',
               help='Server metadata key whose value "true" marks an '
                    'instance for HA.'),
    cfg.StrOpt('ha_tag', default='ha-enabled',
               help='Server tag that marks an instance for HA.'),
    cfg.BoolOpt('include_error', default=False,
                help='Also evacuate instances that were in ERROR before '
                     'the failure.'),
    cfg.BoolOpt('restore_power_state', default=True,
                help='End each evacuated instance in its original power '
                     'state (ACTIVE stays ACTIVE, SHUTOFF stays SHUTOFF).'),
]
