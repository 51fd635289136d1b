"""Configuration: every option group is registered here."""
from oslo_config import cfg

from freezer_dr.conf import api
from freezer_dr.conf import cloud
from freezer_dr.conf import coordination
from freezer_dr.conf import engine
from freezer_dr.conf import evacuation
from freezer_dr.conf import fencing
from freezer_dr.conf import monitor
from freezer_dr.conf import notifiers

GROUPS = [
    (coordination.GROUP, coordination.OPTS),
    (api.GROUP, api.OPTS),
    (engine.GROUP, engine.OPTS),
    (monitor.GROUP, monitor.OPTS),
    (monitor.NOVA_GROUP, monitor.NOVA_OPTS),
    (fencing.GROUP, fencing.OPTS),
    (evacuation.GROUP, evacuation.OPTS),
    (notifiers.GROUP, notifiers.OPTS),
    (notifiers.EMAIL_GROUP, notifiers.EMAIL_OPTS),
    (notifiers.WEBHOOK_GROUP, notifiers.WEBHOOK_OPTS),
    (cloud.GROUP, cloud.OPTS),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every freezer-dr option group on ``conf``.

    Each ConfigOpts gets OptGroup objects of its own: oslo.config keeps
    overrides on the group object, so sharing one would leak a
    ``set_override`` from one ConfigOpts into every other.
    """
    for group, opts in GROUPS:
        conf.register_group(cfg.OptGroup(group.name, title=group.title,
                                         help=group.help))
        conf.register_opts(opts, group=group.name)


def new_config() -> cfg.ConfigOpts:
    """A private ConfigOpts with all options registered (no global state)."""
    conf = cfg.ConfigOpts()
    register_opts(conf)
    return conf
