"""What every manage command needs: an etcd client and the store.

Built from ``[coordination]`` only; the CLI never takes leadership.
"""
from __future__ import annotations

import dataclasses
import getpass
import socket

from etcd3gw.client import Etcd3Client
from oslo_config import cfg

from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import lease as ha_lease
from freezer_dr.ha import store as ha_store

#: The identity the CLI uses when it reads the leader key; it never
#: campaigns under it.
READER_ID = 'freezer-dr-manage'


@dataclasses.dataclass
class Context:
    """etcd handles of one ``freezer-dr-manage`` invocation."""
    conf: cfg.ConfigOpts
    client: Etcd3Client
    store: ha_store.CheckpointStore
    reader: ha_lease.LeaderLease

    @property
    def cluster(self) -> str:
        return self.conf.coordination.cluster

    @property
    def backend_url(self) -> str:
        return self.conf.coordination.backend_url


def from_config(conf: cfg.ConfigOpts) -> Context:
    """A context for ``conf`` (no network traffic yet)."""
    coord = conf.coordination
    client = ha_etcd.make_client(coord.backend_url, coord.http_timeout)
    reader = ha_lease.LeaderLease(
        client, coord.cluster, READER_ID, coord.lease_ttl,
        coord.keepalive_interval or coord.lease_ttl / 3,
        coord.safety_margin)
    return Context(conf=conf, client=client,
                   store=ha_store.CheckpointStore(client, coord.cluster),
                   reader=reader)


def operator() -> str:
    """``user@host`` of whoever runs the command (for audit fields)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = 'unknown'
    return f'{user}@{socket.gethostname()}'
