"""The log notifier writes one line per event, warning unless all is well."""
from __future__ import annotations

import logging

from freezer_dr.notifiers.base import Event
from freezer_dr.notifiers.log import LogNotifier


def test_one_line_per_event_with_level_by_outcome(caplog):
    caplog.set_level(logging.INFO, logger='freezer_dr.notifiers.log')
    notifier = LogNotifier.from_config(conf=None)
    notifier.send(Event('recovered', 'host c1: done', host='c1',
                        recovery={'id': 'r1', 'step': 'done'}), 'r1:rec')
    notifier.send(Event('storm', '4 of 10 hosts down'), 'storm:1')
    [ok, storm] = caplog.records
    assert ok.levelno == logging.INFO
    assert ok.getMessage() == (
        'notify recovered host=c1 recovery=r1 key=r1:rec: host c1: done')
    assert storm.levelno == logging.WARNING
    assert 'notify storm host=- recovery=- key=storm:1' in storm.getMessage()


def test_default_deliveries_is_one_send():
    notifier = LogNotifier()
    [delivery] = notifier.deliveries(Event('blind', 'monitor down'), 'b:1')
    assert delivery.subkey == 'b:1'
    delivery.deliver()
