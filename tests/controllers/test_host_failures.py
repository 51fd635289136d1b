"""A host fails while the controllers live through a fault: the leader's
controller cut off, a standby's cut off, etcd's raft leader killed, quorum
lost then back, the leader cut off from the cloud, one replica's clock
skewed by 30 s either way.

Each run is judged from ground truth (:mod:`tests.controller_site`): S1
from the BMC power log against Nova's migrations, the confirmation window,
S3 from the migrations, S4 from the record and the mailbox, one mail per
person, and zero overlap of leaders polled on every replica's ``/leader``.
"""
from __future__ import annotations

import json
import os

import pytest

from tests import controller_site
from tests import faketime


@pytest.mark.parametrize('name', list(controller_site.FAULTS))
def test_a_host_failing_during_the_fault_is_recovered_safely(site, name):
    if name.startswith('clock-skew') and faketime.faketime_lib() is None:
        if os.environ.get('CI') == 'true':
            pytest.fail(faketime.MISSING)
        pytest.skip(faketime.MISSING)
    run = controller_site.run_fault(site, controller_site.FAULTS[name])
    print(json.dumps(vars(run)))
    assert run.violations == [], json.dumps(vars(run), indent=1)
    assert run.step == 'done'
    assert run.overlap == 0
    assert run.recovered_during_fault == \
        controller_site.FAULTS[name].acts_during
