"""The replica's metrics on prometheus_client: names, types, help, labels."""
from __future__ import annotations

import pytest

from freezer_dr import config
from freezer_dr import metrics
from freezer_dr import service
from freezer_dr.engine import loop as engine_loop

#: every family a replica and its leader loop publish, as they were named
#: before the move to prometheus_client (what dashboards and alerts use)
FAMILIES = {
    'freezer_dr_blind': (
        'gauge', '1 while the monitor is unavailable (fail closed).'),
    'freezer_dr_cycle_errors_total': (
        'counter', 'Leader cycles that failed closed on an unexpected error.'),
    'freezer_dr_cycles_total': ('counter', 'Leader loop cycles run.'),
    'freezer_dr_epoch': (
        'gauge', "Epoch (fencing token) of this replica's lease, 0 if none."),
    'freezer_dr_etcd_errors_total': (
        'counter', 'etcd requests of the campaign that failed.'),
    'freezer_dr_fencing_ready': (
        'gauge', '1 while every fencing level of the host answered its last '
                 'readiness check.'),
    'freezer_dr_hosts_observed': (
        'gauge', 'Compute hosts the monitor reported.'),
    'freezer_dr_hosts_suspected': (
        'gauge', 'Hosts seen down, inside their confirmation window.'),
    'freezer_dr_hosts_unknown': (
        'gauge', 'Hosts whose state the monitor could not read.'),
    'freezer_dr_last_cycle_seconds': (
        'gauge', 'Duration of the last leader cycle.'),
    'freezer_dr_leader': (
        'gauge', '1 while this replica holds a valid leader lease.'),
    'freezer_dr_leadership_changes_total': (
        'counter', 'Times this replica gained or lost leadership.'),
    'freezer_dr_lease_remaining_seconds': (
        'gauge', "Seconds left on this replica's lease by its own deadline."),
    'freezer_dr_paused': ('gauge', '1 while an operator paused the cluster.'),
    'freezer_dr_recoveries_finished_total': (
        'counter', 'Recoveries this replica finished as leader, by step.'),
    'freezer_dr_recoveries_live': ('gauge', 'Live (unfinished) recoveries.'),
    'freezer_dr_recoveries_opened_total': (
        'counter', 'Recoveries this replica opened as leader.'),
    'freezer_dr_storm': (
        'gauge', '1 while the storm guard holds every failed host.'),
    'freezer_dr_up': ('gauge', 'The replica process is running.'),
}


def families(text: str) -> dict[str, tuple[str, str]]:
    """{name: (type, help)} of a text exposition."""
    helps, types = {}, {}
    for line in text.splitlines():
        if line.startswith('# HELP '):
            name, _, help_text = line[7:].partition(' ')
            helps[name] = help_text
        elif line.startswith('# TYPE '):
            name, _, kind = line[7:].partition(' ')
            types[name] = kind
    assert helps.keys() == types.keys()
    return {name: (types[name], helps[name]) for name in helps}


def sample_names(text: str) -> set[str]:
    return {line.split('{')[0].split(' ')[0] for line in text.splitlines()
            if line and not line.startswith('#')}


@pytest.fixture
def replica_registry():
    """The registry of a replica and its leader loop (nothing started)."""
    conf = config.load([], 'freezer-dr', setup_logging=False)
    conf.set_override('backend_url', 'etcd3+http://127.0.0.1:9',
                      'coordination')
    conf.set_override('enabled', False, 'api')
    registry = metrics.Registry()
    replica = service.Replica(conf, 2.0, registry)
    leader_loop = engine_loop.build(conf, replica.lease, replica.store,
                                    metrics=registry)
    return registry, leader_loop


def test_a_replica_publishes_the_same_families_as_before(replica_registry):
    registry, _loop = replica_registry
    text = registry.render()
    assert families(text) == FAMILIES
    # no series beyond the declared families (no counter *_created)
    assert sample_names(text) <= FAMILIES.keys()
    assert '\nfreezer_dr_up 1.0\n' in text
    assert '\nfreezer_dr_leader 0.0\n' in text


def test_labelled_families_keep_their_label_names(replica_registry):
    registry, _loop = replica_registry
    registry.gauge('freezer_dr_fencing_ready', 'again').labels(
        host='c1').set(0)
    registry.counter('freezer_dr_recoveries_finished_total', 'again').labels(
        step='done').inc()
    text = registry.render()
    assert '\nfreezer_dr_fencing_ready{host="c1"} 0.0\n' in text
    assert '\nfreezer_dr_recoveries_finished_total{step="done"} 1.0\n' \
        in text
    assert registry.value('freezer_dr_recoveries_finished_total',
                          {'step': 'done'}) == 1


def test_counters_gauges_labels_and_escaping_render():
    registry = metrics.Registry()
    counter = registry.counter('fdr_fenced_total', 'Hosts fenced.',
                               labels=('level',))
    counter.labels(level='ipmi').inc()
    counter.labels(level='ipmi').inc(2)
    counter.labels(level='manual').inc()
    assert registry.counter('fdr_fenced_total', 'again') is counter
    registry.gauge('fdr_seconds', 'A "quoted"\nhelp.').set(0.25)
    registry.gauge('fdr_host', 'Host.', labels=('host',)).labels(
        host='a"b\\c').set(1)
    live = {'value': 2.0}
    registry.gauge('fdr_live', 'Read at scrape.', lambda: live['value'])
    live['value'] = 5.0
    text = registry.render()
    assert '# TYPE fdr_fenced_total counter\n' in text
    assert 'fdr_fenced_total{level="ipmi"} 3.0\n' in text
    assert 'fdr_fenced_total{level="manual"} 1.0\n' in text
    assert '# HELP fdr_seconds A "quoted"\\nhelp.\n' in text
    assert 'fdr_seconds 0.25\n' in text
    assert 'fdr_host{host="a\\"b\\\\c"} 1.0\n' in text
    assert 'fdr_live 5.0\n' in text
    assert '_created' not in text
    assert registry.value('fdr_fenced_total', {'level': 'ipmi'}) == 3
    assert registry.value('fdr_live') == 5


def test_registries_of_two_replicas_do_not_collide():
    first, second = metrics.Registry(), metrics.Registry()
    first.counter('freezer_dr_cycles_total', 'Cycles.').inc()
    second.counter('freezer_dr_cycles_total', 'Cycles.').inc(4)
    assert first.value('freezer_dr_cycles_total') == 1
    assert second.value('freezer_dr_cycles_total') == 4


def test_registry_refuses_bad_names_kind_changes_and_decrements():
    registry = metrics.Registry()
    with pytest.raises(ValueError, match='invalid metric name'):
        registry.counter('bad name_total', 'x')
    with pytest.raises(ValueError, match='must end in _total'):
        registry.counter('fdr_x', 'x')
    registry.counter('fdr_x_total', 'x')
    with pytest.raises(ValueError, match='already a counter'):
        registry.gauge('fdr_x_total', 'x')
    with pytest.raises(ValueError):
        registry.counter('fdr_x_total', 'x').inc(-1)
    with pytest.raises(ValueError, match='live function has no labels'):
        registry.gauge('fdr_y', 'y', lambda: 1.0, labels=('host',))
