"""Entry point for oslo-config-generator (namespace ``freezer-dr``)."""
from freezer_dr import conf


def list_opts():
    return [(group, opts) for group, opts in conf.GROUPS]
