"""Start and stop a real etcd for tests and benchmarks.

The reusable part lives in :mod:`freezer_dr.demo.etcd_server` (the demo uses
it too); this module is the short import path tests use.
"""
from __future__ import annotations

import contextlib
import typing as t

from freezer_dr.demo.etcd_server import EtcdCluster
from freezer_dr.demo.etcd_server import EtcdNotFound
from freezer_dr.demo.etcd_server import EtcdServer
from freezer_dr.demo.etcd_server import EtcdStartError
from freezer_dr.demo.etcd_server import find_etcd_binary
from freezer_dr.demo.etcd_server import free_port

__all__ = ['EtcdCluster', 'EtcdNotFound', 'EtcdServer', 'EtcdStartError',
           'find_etcd_binary', 'free_port', 'running_etcd']


@contextlib.contextmanager
def running_etcd(**kwargs: t.Any) -> t.Iterator[EtcdServer]:
    """A started etcd, stopped and its data removed on exit."""
    server = EtcdServer(**kwargs)
    try:
        yield server.start()
    finally:
        server.close()
