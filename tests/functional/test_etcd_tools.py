"""The test tools themselves: a real etcd process and the TCP proxy."""
from __future__ import annotations

import os
import socket

import pytest

from freezer_dr import exceptions
from freezer_dr.demo import etcd_server as etcd_launcher
from freezer_dr.ha import etcd


def test_etcd_binary_is_the_real_program_not_a_wrapper():
    path = etcd_launcher.find_etcd_binary()
    with open(path, 'rb') as binary:
        assert binary.read(4) == b'\x7fELF'


def test_server_keeps_ports_and_data_across_restart_and_kill(etcd_factory):
    server = etcd_factory()
    url, port = server.url, server.client_port
    client = etcd.make_client(url, 1.0)
    client.put('k', 'v')
    first_pid = server.pid
    server.restart()
    assert (server.url, server.client_port) == (url, port)
    assert server.pid != first_pid
    assert client.get('k') == [b'v']
    server.kill()
    assert not server.running
    with pytest.raises(exceptions.StoreUnavailable):
        etcd.get_key(client, 'k')
    server.start()
    assert client.get('k') == [b'v']


def test_paused_server_times_out_then_answers(etcd_factory):
    server = etcd_factory()
    client = etcd.make_client(server.url, 0.3)
    server.pause()
    with pytest.raises(exceptions.StoreUnavailable, match='timed out'):
        etcd.get_key(client, 'k')
    server.resume()
    assert etcd.get_key(client, 'k') is None


def test_close_removes_a_private_data_dir():
    with etcd_launcher.EtcdServer() as server:
        base = server.base_dir
        pid = server.pid
        assert os.path.isdir(base)
    assert not os.path.exists(base)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_proxy_modes(etcd_proxy):
    client = etcd.make_client(etcd_proxy.url, 0.3)
    assert etcd.get_key(client, 'k') is None
    etcd_proxy.close()
    with pytest.raises(exceptions.StoreUnavailable):
        etcd.get_key(client, 'k')
    etcd_proxy.blackhole()
    with pytest.raises(exceptions.StoreUnavailable, match='timed out'):
        etcd.get_key(client, 'k')
    etcd_proxy.forward()
    assert etcd.get_key(client, 'k') is None


def test_listener_ports_are_picked_below_the_ephemeral_range():
    """CI saw a replica fail with "address already in use": its port came
    from bind(0), the range outgoing connections take source ports from,
    and one did before the replica bound it."""
    span = etcd_launcher._listen_range()
    if span is None:
        pytest.skip(f'{etcd_launcher.EPHEMERAL_RANGE} is not readable '
                    '(not Linux)')
    ports = etcd_launcher.free_ports(50)
    assert len(set(ports)) == 50
    assert all(span[0] <= port <= span[1] for port in ports)
    with socket.socket() as sock:          # and each can be listened on
        sock.bind(('127.0.0.1', ports[0]))
