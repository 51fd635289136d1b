"""Backend URL parsing: tooz-style etcd3gw URLs, errors naming the option."""
import pytest

from freezer_dr import exceptions
from freezer_dr.ha import etcd
from freezer_dr.ha import members


@pytest.mark.parametrize('url, expected', [
    ('etcd3+http://127.0.0.1:2379', ('http', '127.0.0.1', 2379)),
    ('etcd3+https://etcd.example:4001/', ('https', 'etcd.example', 4001)),
    ('etcd3+http://etcd', ('http', 'etcd', 2379)),
    ('etcd3+http://[::1]:2379?api_version=v3', ('http', '::1', 2379)),
])
def test_good_urls(url, expected):
    assert etcd.parse_backend_url(url) == expected


@pytest.mark.parametrize('url', [
    'etcd://127.0.0.1:2379', 'etcd3://h:1', 'http://h:1', '', 'etcd3+http://',
    'etcd3+http://h:notaport', 'etcd3+http://h:1/v3', 'etcd3+http://h?x=1',
])
def test_bad_urls_name_the_option(url):
    with pytest.raises(exceptions.ConfigError,
                       match=r'\[coordination\] backend_url'):
        etcd.parse_backend_url(url)


def test_passwords_never_reach_the_error():
    with pytest.raises(exceptions.ConfigError) as raised:
        etcd.parse_backend_url('etcd3+http://root:s3cret@h:1')
    assert 's3cret' not in str(raised.value)
    assert etcd.redact_url('etcd3+http://u:s3cret@h:1') == \
        'etcd3+http://u:***@h:1'


def test_client_carries_timeout_and_tls_files():
    client = etcd.make_client(
        'etcd3+https://h:1?ca_cert=/ca.pem&cert_key=/k&cert_cert=/c', 0.7)
    assert client.timeout == 0.7
    assert client.base_url == 'https://h:1'
    assert client.session.verify == '/ca.pem'
    assert client.session.cert == ('/c', '/k')
    with pytest.raises(exceptions.ConfigError, match='http_timeout'):
        etcd.make_client('etcd3+http://h:1', 0)


def test_tooz_url_sets_small_timeouts_and_keeps_tls():
    url = members.tooz_url('etcd3+https://h:1?ca_cert=/ca.pem&timeout=30',
                           0.4, 7.5)
    assert url.startswith('etcd3+https://h:1?')
    assert 'ca_cert=%2Fca.pem' in url
    assert 'timeout=1' in url and 'timeout=30' not in url
    assert 'membership_timeout=8' in url
