"""Backend URL parsing: several members, TLS files, errors naming it."""
import pytest
from tooz import coordination

from freezer_dr import exceptions
from freezer_dr.ha import endpoints
from freezer_dr.ha import etcd
from freezer_dr.ha import etcd_client
from freezer_dr.ha import tooz_driver


def _members(url):
    backend = etcd.parse_backend_url(url)
    return backend.protocol, [(e.host, e.port) for e in backend.endpoints]


@pytest.mark.parametrize('url, expected', [
    ('etcd3+http://127.0.0.1:2379', ('http', [('127.0.0.1', 2379)])),
    ('etcd3+https://etcd.example:4001/', ('https', [('etcd.example', 4001)])),
    ('etcd3+http://etcd', ('http', [('etcd', 2379)])),
    ('etcd3+http://[::1]:2379?api_version=v3', ('http', [('::1', 2379)])),
    ('etcd3+https://198.18.0.1:2379,198.18.0.2:2379,198.18.0.3:2379'
     '?ca_cert=/etc/freezer-dr/etcd-ca.pem&cert_key=/k.pem&cert_cert=/c.pem',
     ('https', [('198.18.0.1', 2379), ('198.18.0.2', 2379),
                ('198.18.0.3', 2379)])),
    ('etcd3+http://a,b:2380,[fd00::1]:4001',
     ('http', [('a', 2379), ('b', 2380), ('fd00::1', 4001)])),
])
def test_good_urls(url, expected):
    assert _members(url) == expected


def test_tls_files_and_api_version_are_kept():
    backend = etcd.parse_backend_url(
        'etcd3+https://a:1,b:2?ca_cert=/ca.pem&cert_key=/k&cert_cert=/c'
        '&api_version=v3beta')
    assert (backend.ca_cert, backend.cert_key, backend.cert_cert) == \
        ('/ca.pem', '/k', '/c')
    assert backend.api_path == '/v3beta/'
    assert [str(e) for e in backend.endpoints] == ['a:1', 'b:2']


@pytest.mark.parametrize('url, says', [
    ('etcd://127.0.0.1:2379', 'scheme'),
    ('etcd3://h:1', 'scheme'),
    ('http://h:1', 'scheme'),
    ('', 'scheme'),
    ('etcd3+http://', 'no host'),
    ('etcd3+http://h:notaport', 'bad endpoint'),
    ('etcd3+http://h:1/v3', 'unexpected path'),
    ('etcd3+http://h?x=1', 'unknown option'),
    ('etcd3+http://a:1,,b:2', 'empty endpoint'),
    ('etcd3+http://a:1,', 'empty endpoint'),
    ('etcd3+http://a:1,b:99999', 'bad endpoint'),
    ('etcd3+http://a:1,a:1', 'listed twice'),
    ('etcd3+http://a:,b:2', 'no port'),
    ('etcd3+http://a:1?ca_cert=/ca.pem', 'need the etcd3\\+https scheme'),
    ('etcd3+https://a:1?cert_key=/k', 'go together'),
])
def test_bad_urls_name_the_option(url, says):
    with pytest.raises(exceptions.ConfigError,
                       match=r'\[coordination\] backend_url.*' + says):
        etcd.parse_backend_url(url)


def test_passwords_never_reach_the_error():
    with pytest.raises(exceptions.ConfigError) as raised:
        etcd.parse_backend_url('etcd3+http://root:s3cret@h:1,g:2')
    assert 's3cret' not in str(raised.value)
    assert etcd.redact_url('etcd3+http://u:s3cret@h:1') == \
        'etcd3+http://u:***@h:1'


def test_client_carries_timeout_and_tls_files(monkeypatch):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/env/bundle.pem')
    client = etcd.make_client(
        'etcd3+https://h:1,g:2?ca_cert=/ca.pem&cert_key=/k&cert_cert=/c', 0.7)
    assert client.timeout == 0.7
    assert client.base_url == 'https://h:1'
    assert client.session.verify == '/ca.pem'
    assert client.session.cert == ('/c', '/k')
    # requests would let REQUESTS_CA_BUNDLE override session.verify
    assert client.session.trust_env is False
    assert client.endpoint_urls('/watch') == [
        'https://h:1/v3/watch', 'https://g:2/v3/watch']
    with pytest.raises(exceptions.ConfigError, match='http_timeout'):
        etcd.make_client('etcd3+http://h:1', 0)


def test_without_ca_cert_the_environment_bundle_is_used(monkeypatch):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/env/bundle.pem')
    assert etcd.make_client('etcd3+https://h:1', 1).session.verify == \
        '/env/bundle.pem'
    monkeypatch.delenv('REQUESTS_CA_BUNDLE')
    monkeypatch.delenv('CURL_CA_BUNDLE', raising=False)
    assert etcd.make_client('etcd3+https://h:1', 1).session.verify is True


def test_coordinator_url_keeps_every_member_tls_and_our_timeouts():
    url = tooz_driver.coordinator_url(
        'etcd3+https://h:1,[::1]:2?ca_cert=/ca.pem&timeout=30', 0.4, 7.5)
    assert url.startswith('freezer-etcd3+https://h:1,[::1]:2?')
    assert 'ca_cert=%2Fca.pem' in url
    assert 'http_timeout=0.4' in url and 'timeout=30' not in url
    assert 'membership_timeout=8' in url
    with pytest.raises(exceptions.ConfigError, match='backend_url'):
        tooz_driver.coordinator_url('etcd3+http://a:1?user=x', 1, 1)


def test_the_tooz_backend_talks_through_our_client(monkeypatch):
    """tooz loads our driver by its URL scheme; its client is ours."""
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/env/bundle.pem')
    coord = coordination.get_coordinator(tooz_driver.coordinator_url(
        'etcd3+https://h:1,g:2?ca_cert=/ca.pem', 0.4, 7.5), b'a')
    assert isinstance(coord, tooz_driver.FailoverEtcd3Driver)
    assert isinstance(coord.client, etcd_client.FailoverClient)
    assert [str(e) for e in coord.client.backend.endpoints] == ['h:1', 'g:2']
    assert coord.client.session.verify == '/ca.pem'
    assert coord.client.timeout == 0.4
    assert coord.membership_timeout == 8
    assert not coord.reader


def test_unreadable_tls_files_are_named(tmp_path):
    missing = tmp_path / 'nope.pem'
    backend = endpoints.parse(f'etcd3+https://h:1?ca_cert={missing}')
    with pytest.raises(exceptions.ConfigError,
                       match=f'ca_cert: cannot read {missing}'):
        endpoints.check_tls_files(backend)
    junk = tmp_path / 'junk.pem'
    junk.write_text('not a certificate\n')
    backend = endpoints.parse(f'etcd3+https://h:1?ca_cert={junk}')
    with pytest.raises(exceptions.ConfigError,
                       match=f'ca_cert {junk}: not a PEM CA certificate'):
        endpoints.check_tls_files(backend)
    backend = endpoints.parse(
        f'etcd3+https://h:1?cert_cert={junk}&cert_key={missing}')
    with pytest.raises(exceptions.ConfigError,
                       match='cert_cert: cannot read|cert_key: cannot read'):
        endpoints.check_tls_files(backend)
    key = tmp_path / 'key.pem'
    key.write_text('junk\n')
    backend = endpoints.parse(
        f'etcd3+https://h:1?cert_cert={junk}&cert_key={key}')
    with pytest.raises(exceptions.ConfigError,
                       match=f'cert_cert {junk} / cert_key {key}'):
        endpoints.check_tls_files(backend)
