"""Helpers of the leader-loop tests: a config from the simulated cloud,
and cycling a loop until it says something."""
from __future__ import annotations

import configparser

from freezer_dr import conf as freezer_conf
from freezer_dr.demo.cluster import wait_for


def make_conf(cloud, etcd_url, cluster, **groups):
    """The simulated cloud's freezer-dr.conf, on the test etcd."""
    parser = configparser.RawConfigParser()
    parser.read(cloud.config_file)
    conf = freezer_conf.new_config()
    conf([])
    for section in parser.sections():
        for key, value in parser.items(section):
            if section in conf and key in conf[section]:
                conf.set_override(key, value, section)
    conf.set_override('backend_url', etcd_url, 'coordination')
    conf.set_override('cluster', cluster, 'coordination')
    conf.set_override('confirm_window', 2.0, 'monitor')
    for group, values in groups.items():
        for key, value in values.items():
            conf.set_override(key, value, group)
    return conf


def cycles_until(loop, predicate, timeout=30):
    """Run cycles until one's sentence satisfies ``predicate``."""
    def once():
        sentence = loop.run_cycle()
        return sentence if predicate(sentence) else None
    return wait_for(once, timeout, 'the expected cycle', interval=0.3)
