"""The leader-key watch on a real etcd: member failover, reconnects, stop."""
from __future__ import annotations

import threading
import time

from freezer_dr.demo.etcd_server import free_port
from freezer_dr.ha import etcd
from freezer_dr.ha import leader_watch

HTTP_TIMEOUT = 1.0


def watch_on(url: str, key: str, event: threading.Event,
             retry: float = 0.1) -> leader_watch.LeaderKeyWatch:
    client = etcd.make_client(url, HTTP_TIMEOUT)
    return leader_watch.LeaderKeyWatch.for_client(
        client, key, event.set, connect_timeout=HTTP_TIMEOUT, idle=30,
        retry=retry).start()


def delete_seen(client, key: str, event: threading.Event,
                timeout: float = 5.0) -> bool:
    """Put and delete ``key`` until the watch reports a delete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        etcd.txn(client, [], [etcd.put_op(key, 'x')])
        etcd.txn(client, [], [etcd.delete_op(key)])
        if event.wait(0.3):
            return True
    return False


def test_a_member_that_refuses_is_skipped_for_the_next(
        etcd_server, etcd_client, cluster_name):
    url = (f'etcd3+http://127.0.0.1:{free_port()},'
           f'127.0.0.1:{etcd_server.client_port}')
    key = f'/{cluster_name}/leader'
    deleted = threading.Event()
    watch = watch_on(url, key, deleted)
    try:
        assert delete_seen(etcd_client, key, deleted)
    finally:
        watch.stop()


def test_the_watch_reopens_after_a_cut_and_sees_deletes_again(
        etcd_proxy, etcd_client, cluster_name):
    key = f'/{cluster_name}/leader'
    deleted = threading.Event()
    watch = watch_on(etcd_proxy.url, key, deleted)
    try:
        assert delete_seen(etcd_client, key, deleted)
        etcd_proxy.close()               # the stream breaks; opens fail
        time.sleep(0.5)
        deleted.clear()
        etcd.txn(etcd_client, [], [etcd.put_op(key, 'x')])
        etcd.txn(etcd_client, [], [etcd.delete_op(key)])
        assert not deleted.wait(0.5), 'a delete seen through a cut link'
        etcd_proxy.forward()
        assert delete_seen(etcd_client, key, deleted)
    finally:
        watch.stop()


def test_stop_ends_the_watch_while_it_waits_to_retry(cluster_name):
    url = f'etcd3+http://127.0.0.1:{free_port()}'
    deleted = threading.Event()
    watch = watch_on(url, f'/{cluster_name}/leader', deleted, retry=30.0)
    time.sleep(0.3)                     # the first open failed: waiting
    started = time.monotonic()
    watch.stop()
    watch._thread.join(5)
    assert not watch._thread.is_alive()
    assert time.monotonic() - started < 2
