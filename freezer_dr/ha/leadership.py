"""The etcd client, leader lease and fenced store of one actor, wired
from ``[coordination]`` (the replica and one-shot mode use the same)."""
from __future__ import annotations

import dataclasses
import typing as t

from oslo_config import cfg

from freezer_dr.ha import etcd
from freezer_dr.ha import lease as ha_lease
from freezer_dr.ha import store as ha_store


@dataclasses.dataclass(frozen=True)
class Leadership:
    """What acting as the leader of a cluster takes."""
    client: t.Any
    lease: ha_lease.LeaderLease
    store: ha_store.CheckpointStore


def from_config(conf: cfg.ConfigOpts, member_id: str,
                keepalive_interval: float,
                info: dict[str, t.Any] | None = None) -> Leadership:
    """The client, the lease (not acquired yet) and the fenced store."""
    coord = conf.coordination
    client = etcd.make_client(coord.backend_url, coord.http_timeout)
    lease = ha_lease.LeaderLease(
        client, coord.cluster, member_id, coord.lease_ttl,
        keepalive_interval, coord.safety_margin, info=info)
    store = ha_store.CheckpointStore(client, coord.cluster, lease,
                                     history_size=conf.engine.history_size)
    return Leadership(client, lease, store)
