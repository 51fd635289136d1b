"""Start-up validation of the [coordination] timing settings."""
import pytest

from freezer_dr import conf
from freezer_dr import exceptions
from freezer_dr.ha import timing


def _validate(**overrides):
    settings = {'ttl': 10.0, 'keepalive_interval': None,
                'http_timeout': 1.5, 'poll_interval': 1.0, 'margin': 0.5}
    settings.update(overrides)
    return timing.validate(**settings)


def test_defaults_of_the_config_are_valid():
    coord = conf.new_config().coordination
    interval = timing.validate(coord.lease_ttl, coord.keepalive_interval,
                               coord.http_timeout, coord.poll_interval,
                               coord.safety_margin)
    assert interval == pytest.approx(coord.lease_ttl / 3)


def test_explicit_keepalive_interval_is_returned():
    assert _validate(keepalive_interval=2.0) == 2.0


@pytest.mark.parametrize('overrides, options', [
    ({'ttl': 1.0}, ['lease_ttl']),
    ({'http_timeout': 5.0}, ['http_timeout', 'lease_ttl']),
    ({'keepalive_interval': 8.0},
     ['keepalive_interval', 'http_timeout', 'safety_margin', 'lease_ttl']),
    ({'ttl': 4.0, 'keepalive_interval': 2.0, 'http_timeout': 1.0,
      'margin': 1.0},
     ['keepalive_interval', 'http_timeout', 'safety_margin', 'lease_ttl']),
    ({'poll_interval': 6.0}, ['poll_interval', 'lease_ttl']),
    ({'margin': 5.0}, ['safety_margin', 'lease_ttl']),
    ({'margin': -1.0}, ['safety_margin']),
    ({'keepalive_interval': 0.0}, ['keepalive_interval']),
    ({'poll_interval': 0.0}, ['poll_interval']),
])
def test_bad_timings_name_the_options(overrides, options):
    with pytest.raises(exceptions.ConfigError) as raised:
        _validate(**overrides)
    message = str(raised.value)
    for option in options:
        assert f'[coordination] {option}' in message


def test_interval_that_cannot_survive_one_lost_keepalive_only_warns(caplog):
    # 2 x 3 + 1.5 + 0.5 >= 8: valid, but one lost keepalive demotes.
    assert _validate(ttl=8.0, keepalive_interval=3.0) == 3.0
    assert 'one lost keepalive' in caplog.text


def test_a_keepalive_through_every_member_that_may_not_fit_warns(caplog):
    # 1.5 + 3 x 2.8 + 0.5 >= 10 with three members: valid, but a warning
    assert timing.validate(10.0, 1.5, 2.8, 1.0, 0.5, endpoints=3) == 1.5
    assert 'tries all 3 etcd members' in caplog.text
    caplog.clear()
    assert timing.validate(10.0, 1.5, 2.8, 1.0, 0.5, endpoints=1) == 1.5
    assert 'etcd members' not in caplog.text


def test_blind_handover_must_not_be_shorter_than_the_lease():
    timing.validate_handover(30.0, 10.0)
    with pytest.raises(exceptions.ConfigError,
                       match=r'\[engine\] blind_handover_after .*lease_ttl'):
        timing.validate_handover(5.0, 10.0)
