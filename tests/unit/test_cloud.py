"""Building the openstacksdk connection from [cloud]; error wording."""
import keystoneauth1.session as ks_session
import pytest

from freezer_dr import cloud
from freezer_dr import deadline_http
from freezer_dr import exceptions
from freezer_dr.deadline import DeadlineExceeded
from freezer_dr.evacuators.nova import NovaEvacuator
from tests.nova_support import fresh_config

CLOUDS = """clouds:
  one:
    auth_type: password
    auth:
      auth_url: http://127.0.0.1:9/v3
      username: admin
      password: very-secret
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
"""


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'clouds.yaml'
    path.write_text(CLOUDS)
    conf = fresh_config()
    conf.set_override('clouds_yaml', str(path), 'cloud')
    conf.set_override('cloud', 'one', 'cloud')
    return conf


def test_connection_carries_microversion_and_timeout(conf):
    conf.set_override('api_timeout', 7.0, 'cloud')
    conn = cloud.connect(conf)
    assert conn.config.get_api_version('compute') == '2.94'
    assert conn.session.timeout == 7.0
    conn = cloud.connect(conf, api_timeout=3.0, microversion='2.95')
    assert conn.config.get_api_version('compute') == '2.95'
    assert conn.session.timeout == 3.0


def test_unknown_cloud_names_the_option(conf):
    conf.set_override('cloud', 'other', 'cloud')
    with pytest.raises(exceptions.ConfigError, match=r'\[cloud\] cloud'):
        cloud.connect(conf)


def test_unknown_region_names_the_option(conf):
    conf.set_override('region_name', 'Mars', 'cloud')
    with pytest.raises(exceptions.ConfigError,
                       match=r'\[cloud\] region_name'):
        cloud.connect(conf)


def test_missing_clouds_yaml_names_the_option(conf, tmp_path):
    conf.set_override('clouds_yaml', str(tmp_path / 'none.yaml'), 'cloud')
    with pytest.raises(exceptions.ConfigError,
                       match=r'\[cloud\] clouds_yaml'):
        cloud.connect(conf)


def test_refusal_is_4xx_other_than_auth_timeout_and_rate_limit():
    class Err(Exception):
        def __init__(self, status):
            self.status_code = status
    assert cloud.is_refusal(Err(400)) and cloud.is_refusal(Err(409))
    assert not any(cloud.is_refusal(Err(s)) for s in (401, 408, 429, 500))
    assert not cloud.is_refusal(ConnectionError())


def test_parse_time_treats_naive_as_utc():
    stamp = cloud.parse_time('2026-11-26T10:00:00.000000')
    assert stamp.utcoffset().total_seconds() == 0
    assert cloud.parse_time('garbage') is None
    assert cloud.parse_time(None) is None


def test_evacuator_calls_time_out_after_the_cloud_api_timeout(conf):
    conf.set_override('api_timeout', 4.0, 'cloud')
    shared = cloud.connect(conf)
    evacuator = NovaEvacuator.from_config(conf, shared)
    assert evacuator._conn is shared and evacuator.api_timeout == 4.0
    quick = cloud.connect(conf, api_timeout=1.0)    # a quick look's
    own = NovaEvacuator.from_config(conf, quick)._conn
    assert own is not quick and own.session.timeout == 4.0


def test_every_request_of_the_connection_is_bounded_in_full(conf):
    conf.set_override('api_timeout', 7.0, 'cloud')
    conn = cloud.connect(conf)
    adapters = {prefix: conn.session.session.get_adapter(prefix)
                for prefix in ('https://', 'http://')}
    for adapter in adapters.values():
        assert isinstance(adapter, deadline_http.BoundedAdapter)
        assert adapter.default_budget == 7.0
        # keystoneauth's own adapter settings (TCP keep-alive) are kept
        assert isinstance(adapter, ks_session.TCPKeepAliveAdapter)
    # An evacuator with another write deadline leaves the shared
    # connection's per-request budget as it was.
    evacuator = NovaEvacuator(conn, api_timeout=3.0)
    assert evacuator.api_timeout == 3.0
    assert conn.session.session.get_adapter('http://') is adapters['http://']
    assert adapters['http://'].default_budget == 7.0


def test_deadline_errors_are_api_errors_and_not_refusals():
    error = DeadlineExceeded('POST http://nova/x: no complete answer '
                             'within 5 s')
    assert isinstance(error, cloud.API_ERRORS)
    assert not cloud.is_refusal(error)
    assert cloud.describe_error(error) == str(error)
