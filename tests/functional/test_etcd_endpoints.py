"""Several etcd members and TLS, against real etcd processes on loopback.

Failover between members, leases and fenced writes across a switch, TLS
settings that win over REQUESTS_CA_BUNDLE on every connection (store,
lease, tooz membership, leader watch), start-up refusals of a CA that
does not match, and a keepalive answered 200 with an error body.
"""
from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time

import etcd3gw
import pytest
import requests

from freezer_dr import exceptions
from freezer_dr.demo import config as demo_config
from freezer_dr.demo.cluster import wait_for
from freezer_dr.demo.replica import service_env
from freezer_dr.ha import endpoints
from freezer_dr.ha import etcd
from freezer_dr.ha import leader_watch
from freezer_dr.ha import lease as ha_lease
from freezer_dr.ha import members as ha_members
from tests import replicas as rp
from tests.tlscerts import CertificateAuthority

HTTP_TIMEOUT = 0.5
SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'


def multi_url(cluster, order=None) -> str:
    members = cluster.members
    order = range(len(members)) if order is None else order
    hosts = ','.join(f'127.0.0.1:{members[i].client_port}' for i in order)
    return f'etcd3+http://{hosts}'


def make_lease(url, cluster_name, member, ttl=4.0):
    return ha_lease.LeaderLease(etcd.make_client(url, HTTP_TIMEOUT),
                                cluster_name, member, ttl=ttl,
                                keepalive_interval=ttl / 4, margin=0.3)


@pytest.fixture
def bundle_env(monkeypatch):
    """The environment of this machine image: a CA bundle that is not ours."""
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', SYSTEM_BUNDLE)
    monkeypatch.setenv('CURL_CA_BUNDLE', SYSTEM_BUNDLE)


# -- failover --------------------------------------------------------------
def test_reads_move_to_the_next_member_when_one_is_killed(etcd_cluster):
    client = etcd.make_client(multi_url(etcd_cluster), HTTP_TIMEOUT)
    client.put('k', 'v')
    first = client.endpoint
    etcd_cluster.members[0].kill()
    found = wait_for(lambda: _quiet_get(client, 'k'), 10,
                     'a read from another member')
    assert found and found[0] == b'v'
    assert client.endpoint != first
    # the next member, or the one after it if the next one timed out
    # while the survivors elected a new raft leader (a loaded machine)
    assert str(client.endpoint) in {
        f'127.0.0.1:{m.client_port}' for m in etcd_cluster.members[1:]}


def _quiet_get(client, key):
    try:
        return etcd.get_key(client, key)
    except exceptions.StoreUnavailable:
        return None


def test_a_request_never_delivered_goes_to_the_next_member(etcd_cluster):
    """Connection refused: even a write is sent to the next member."""
    member = etcd_cluster.members[0]
    member.kill()
    client = etcd.make_client(multi_url(etcd_cluster), HTTP_TIMEOUT)
    result = wait_for(lambda: _quiet_txn(client), 10,
                      'a write through another member')
    assert result and result['succeeded']
    assert str(client.endpoint) != f'127.0.0.1:{member.client_port}'


def _quiet_txn(client):
    try:
        return etcd.txn(client, [etcd.compare_create('w', 0)],
                        [etcd.put_op('w', 'x')])
    except exceptions.StoreUnavailable:
        return None


def test_lease_and_fenced_writes_survive_a_switch_at_the_same_epoch(
        etcd_cluster, cluster_name):
    """The member the leader talks to dies: same lease, same epoch, its
    fenced writes still land, and nobody else can take over."""
    leader = make_lease(multi_url(etcd_cluster), cluster_name, 'a')
    standby = make_lease(multi_url(etcd_cluster, [2, 1, 0]), cluster_name,
                         'b')
    try:
        assert leader.try_acquire()
        epoch, lease_id = leader.epoch, leader.lease_id
        used = leader.client.endpoint
        victim = next(m for m in etcd_cluster.members
                      if f'127.0.0.1:{m.client_port}' == str(used))
        victim.kill()
        wait_for(leader.keepalive, 10, 'a good keepalive', interval=0.2)
        assert leader.client.endpoint != used
        assert (leader.epoch, leader.lease_id) == (epoch, lease_id)
        assert leader.read_leader()['epoch'] == epoch
        # a fenced write at our epoch lands through the new member
        key = f'/freezer-dr/{cluster_name}/probe'
        result = etcd.txn(leader.client,
                          [etcd.compare_create(leader.leader_key, epoch)],
                          [etcd.put_op(key, 'x')])
        assert result['succeeded']
        assert not standby.try_acquire()
    finally:
        for lease in (leader, standby):
            try:
                lease.release()
            except exceptions.StoreUnavailable:
                pass


def test_membership_survives_the_loss_of_its_member(etcd_cluster,
                                                    cluster_name):
    """tooz heartbeats go through our client: they move to the next
    member, and the member record outlives its membership_timeout."""
    group = ha_members.Membership(multi_url(etcd_cluster), cluster_name, 'a',
                                  {}, 2.0, HTTP_TIMEOUT)
    try:
        group.start()
        assert group._coord.client.backend.endpoints == \
            etcd.parse_backend_url(multi_url(etcd_cluster)).endpoints
        etcd_cluster.members[0].kill()
        time.sleep(3 * 2.0)     # beyond membership_timeout
        reader = multi_url(etcd_cluster, [2, 1, 0])
        assert [m['member_id'] for m in ha_members.list_members(
            reader, cluster_name, 1.0)] == ['a']
    finally:
        group.stop()


def test_a_write_that_may_have_landed_is_not_repeated(etcd_cluster,
                                                      tcp_proxy_factory):
    """A timeout after sending is reported, never silently re-sent."""
    proxy = tcp_proxy_factory(etcd_cluster.members[0].client_port)
    other = etcd_cluster.members[1].client_port
    client = etcd.make_client(
        f'etcd3+http://127.0.0.1:{proxy.port},127.0.0.1:{other}', 0.3)
    assert etcd.get_key(client, 'x') is None
    proxy.blackhole()
    with pytest.raises(exceptions.StoreUnavailable, match='timed out'):
        etcd.txn(client, [], [etcd.put_op('x', '1')])
    # the next call goes to the next member; the put was not re-sent
    # there (the black hole swallowed it, so it never landed anywhere)
    assert str(client.endpoint) == f'127.0.0.1:{other}'
    assert etcd.get_key(client, 'x') is None


def test_every_member_down_names_each(etcd_cluster):
    client = etcd.make_client(multi_url(etcd_cluster), HTTP_TIMEOUT)
    etcd_cluster.stop()
    with pytest.raises(exceptions.StoreUnavailable) as raised:
        etcd.get_key(client, 'k')
    for member in etcd_cluster.members:
        assert f'127.0.0.1:{member.client_port}' in str(raised.value)


# -- 200 with an error body --------------------------------------------------
class ErrorBodyProxy:
    """Forwards to a real etcd; when armed, answers keepalives as etcd 3.4's
    gateway answers a failed keepalive stream: HTTP 200, error body (the
    body is the one etcd 3.5 sends for "no leader")."""

    BODY = {'error': {'grpc_code': 14, 'http_code': 503,
                      'message': 'etcdserver: no leader',
                      'http_status': 'Service Unavailable'}}

    def __init__(self, upstream: str) -> None:
        self.armed = False
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers['Content-Length']))
                if proxy.armed and self.path.endswith('/lease/keepalive'):
                    code, data = 200, json.dumps(proxy.BODY).encode()
                else:
                    resp = requests.post(upstream + self.path, data=body,
                                         timeout=2)
                    code, data = resp.status_code, resp.content
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_keepalive_answered_200_with_an_error_is_a_failed_keepalive(
        etcd_server, cluster_name):
    """Issue 7: it was read as an expired lease and leadership given up."""
    proxy = ErrorBodyProxy(etcd_server.client_url)
    lease = make_lease(f'etcd3+http://127.0.0.1:{proxy.port}', cluster_name,
                       'a')
    try:
        assert lease.try_acquire()
        epoch, lease_id = lease.epoch, lease.lease_id
        before = lease.remaining()
        proxy.armed = True
        time.sleep(0.2)
        assert not lease.keepalive()
        assert 'no leader' in lease.last_error
        # the deadline did not move, and the lease was not given up
        assert lease.remaining() < before
        assert (lease.lease_id, lease.epoch) == (lease_id, epoch)
        with pytest.raises(exceptions.StoreUnavailable):
            etcd.refresh_lease(lease.client, lease_id)
        stuck = lease.remaining()
        proxy.armed = False
        assert lease.keepalive()
        assert (lease.lease_id, lease.epoch) == (lease_id, epoch)
        assert lease.remaining() > stuck
    finally:
        lease.release()
        proxy.close()


# -- TLS ---------------------------------------------------------------------
def test_tls_wins_over_the_environment_for_store_lease_members_and_watch(
        tls_etcd_cluster, cluster_name, bundle_env):
    url = tls_etcd_cluster.backend_url()
    member = tls_etcd_cluster.members[0]
    # what etcd3gw alone does here: the environment's bundle wins
    raw = etcd3gw.client(host=member.ip, port=member.client_port,
                         protocol='https', ca_cert=tls_etcd_cluster.ca.cert,
                         cert_key=tls_etcd_cluster.client.key,
                         cert_cert=tls_etcd_cluster.client.cert, timeout=2)
    with pytest.raises(etcd3gw.exceptions.ConnectionFailedError):
        raw.get('k')
    lease = make_lease(url, cluster_name, 'a')
    deleted = threading.Event()
    watch = leader_watch.LeaderKeyWatch.for_client(
        lease.client, lease.leader_key, deleted.set, connect_timeout=2,
        idle=30).start()
    group = ha_members.Membership(url, cluster_name, 'a', {}, 4.0,
                                  HTTP_TIMEOUT)
    try:
        group.start()
        assert [m['member_id'] for m in group.members()] == ['a']
        assert lease.try_acquire()
        time.sleep(0.5)             # the watch stream is open
        lease.release()
        assert deleted.wait(5), 'the watch saw no delete over TLS'
    finally:
        watch.stop()
        group.stop()


def test_a_ca_that_does_not_match_is_named(tls_etcd_cluster, tmp_path,
                                           bundle_env):
    other = CertificateAuthority(str(tmp_path / 'other'), name='other')
    url = tls_etcd_cluster.backend_url().replace(
        tls_etcd_cluster.ca.cert, other.cert)
    backend = endpoints.parse(url)
    endpoints.check_tls_files(backend)          # a readable, valid CA
    with pytest.raises(exceptions.ConfigError) as raised:
        endpoints.probe_tls(backend, 2)
    assert f'ca_cert {other.cert}: does not verify' in str(raised.value)


def test_a_client_certificate_etcd_does_not_trust_is_named(
        tls_etcd_cluster, tmp_path):
    stranger = CertificateAuthority(str(tmp_path / 'x'), name='x').issue(
        'stranger')
    url = tls_etcd_cluster.backend_url().replace(
        tls_etcd_cluster.client.cert, stranger.cert).replace(
        tls_etcd_cluster.client.key, stranger.key)
    with pytest.raises(exceptions.ConfigError,
                       match=f'cert_cert {stranger.cert}: etcd at .* '
                             f'rejected the client certificate'):
        endpoints.probe_tls(endpoints.parse(url), 2)


def test_service_exits_2_naming_the_ca_file(tls_etcd_cluster, tmp_path):
    other = CertificateAuthority(str(tmp_path / 'other'), name='other')
    url = tls_etcd_cluster.backend_url().replace(
        tls_etcd_cluster.ca.cert, other.cert)
    path = demo_config.write_config(str(tmp_path / 'bad.conf'), {
        'coordination': {'backend_url': url}, 'api': {'bind_port': 0}})
    env = dict(service_env(), REQUESTS_CA_BUNDLE=SYSTEM_BUNDLE)
    result = subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.service', '--config-file',
         path], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('freezer-dr: error:')]
    assert len(errors) == 1 and other.cert in errors[0], result.stderr
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('url_of, says', [
    (lambda c, d: c.backend_url().replace(c.ca.cert, f'{d}/missing.pem'),
     'ca_cert: cannot read'),
    (lambda c, d: c.backend_url().replace(c.client.key, f'{d}/missing.key'),
     'cert_key: cannot read'),
    (lambda c, d: c.backend_url().replace(',', ',,', 1), 'empty endpoint'),
])
def test_bad_tls_files_and_endpoint_lists_exit_2(tls_etcd_cluster, tmp_path,
                                                 url_of, says):
    path = demo_config.write_config(str(tmp_path / 'bad.conf'), {
        'coordination': {'backend_url': url_of(tls_etcd_cluster,
                                               tmp_path)},
        'api': {'bind_port': 0}})
    result = subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.service', '--config-file',
         path], env=service_env(), capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('freezer-dr: error:')]
    assert len(errors) == 1 and says in errors[0], result.stderr
    assert '[coordination] backend_url' in errors[0]


def test_replicas_elect_over_tls_with_the_bundle_set(tls_etcd_cluster,
                                                     tmp_path, bundle_env):
    """The reported failure: with REQUESTS_CA_BUNDLE set, no replica ever
    became leader (tooz membership and every lease attempt failed). The
    replicas inherit the environment."""
    urls = [tls_etcd_cluster.backend_url(order)
            for order in ([0, 1, 2], [1, 2, 0], [2, 0, 1])]
    replicas = rp.ReplicaSet(str(tmp_path), urls, lease_ttl=3.0)
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_until_serving(90)
        leader = replicas.wait_for_leader(timeout=20)
        wait_for(lambda: len(ha_members.list_members(
            urls[0], replicas.cluster, 1.0)) == 3, 10, 'three members')
        assert len(replicas.leaders()) == 1
        assert 'unknown certificate authority' not in leader.log_text()
    finally:
        replicas.stop()
