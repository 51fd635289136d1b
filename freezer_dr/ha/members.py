"""Which replicas are alive: a tooz group on the same etcd.

Each replica joins the group ``freezer-dr.<cluster>`` with its capabilities
(member id, host, pid, version, start time, role) and heartbeats it; a
replica that stops heartbeating drops out after ``membership_timeout``.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import typing as t
from importlib import metadata as importlib_metadata

from oslo_log import log as logging
from tooz import coordination
from tooz import utils as tooz_utils

from freezer_dr import exceptions
from freezer_dr.ha import etcd
from freezer_dr.ha import tooz_driver

LOG = logging.getLogger(__name__)


def group_id(cluster: str) -> str:
    return f'freezer-dr.{cluster}'


def _version() -> str:
    try:
        return importlib_metadata.version('freezer-dr')
    except importlib_metadata.PackageNotFoundError:
        return 'unknown'


class Membership:
    """This replica's membership of the cluster's tooz group."""

    def __init__(self, backend_url: str, cluster: str, member_id: str,
                 capabilities: dict, membership_timeout: float,
                 http_timeout: float) -> None:
        self.backend_url = backend_url
        self.cluster = cluster
        self.member_id = member_id
        self.membership_timeout = membership_timeout
        self.http_timeout = http_timeout
        self.capabilities: dict[str, t.Any] = {
            'member_id': member_id, 'host': socket.gethostname(),
            'pid': os.getpid(), 'version': _version(),
            'started_at': time.time(), 'role': 'standby',
            **capabilities}
        self._group = group_id(cluster).encode()
        self._coord: t.Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Join the group (creating it if needed) and start heartbeating."""
        if self._coord is None:     # a failed start() may be retried
            url = tooz_driver.coordinator_url(
                self.backend_url, self.http_timeout, self.membership_timeout)
            coord = coordination.get_coordinator(url,
                                                 self.member_id.encode())
            with _tooz_errors('membership start'):
                coord.start(start_heart=False)
            self._coord = coord
        self._join()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f'members-{self.member_id}',
                daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop heartbeating and leave the group."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        coord, self._coord = self._coord, None
        if coord is not None:
            try:
                with _tooz_errors('membership leave'):
                    coord.stop()
            except exceptions.StoreUnavailable as exc:
                # Our member key goes with its lease in membership_timeout.
                LOG.warning('%s: could not leave the member group: %s',
                            self.member_id, exc)

    def update(self, **capabilities: t.Any) -> None:
        """Change advertised capabilities, e.g. ``role='leader'``."""
        with self._lock:
            self.capabilities.update(capabilities)
            caps = dict(self.capabilities)
        if self._coord is None:
            return
        with _tooz_errors('membership update'):
            try:
                self._coord.update_capabilities(self._group, caps).get()
            except coordination.MemberNotJoined:
                self._join()

    def members(self) -> list[dict]:
        """Every live member's capabilities, by member id."""
        coord = self._coord
        if coord is None:
            return list_members(self.backend_url, self.cluster,
                                self.http_timeout)
        return read_members(coord, self.cluster)

    # -- internals ------------------------------------------------------
    def _join(self) -> None:
        with self._lock:
            caps = dict(self.capabilities)
        with _tooz_errors('membership join'):
            try:
                self._coord.create_group(self._group).get()
            except coordination.GroupAlreadyExist:
                pass
            try:
                self._coord.join_group(self._group, caps).get()
            except coordination.MemberAlreadyExist:
                # A previous run of ours is still listed: take it over.
                self._coord.update_capabilities(self._group, caps).get()
        LOG.info('%s joined the member group of %s', self.member_id,
                 self.cluster)

    def _run(self) -> None:
        interval = max(0.2, self.membership_timeout / 3)
        while not self._stop.wait(interval):
            try:
                self._heartbeat()
            except exceptions.StoreUnavailable as exc:
                LOG.warning('%s: membership heartbeat failed: %s',
                            self.member_id, exc)

    def _heartbeat(self) -> None:
        with _tooz_errors('membership heartbeat'):
            self._coord.heartbeat()
            try:
                self._coord.get_member_capabilities(
                    self._group, self.member_id.encode()).get()
            except coordination.MemberNotJoined:
                # Our membership lease expired while etcd was away; tooz
                # made a new lease but does not rejoin by itself.
                self._join()


@contextlib.contextmanager
def _tooz_errors(what: str) -> t.Iterator[None]:
    """tooz (and raw etcd3gw, from heartbeat) errors -> StoreUnavailable."""
    try:
        yield
    except (coordination.ToozError, *etcd.ETCD_ERRORS) as exc:
        raise exceptions.StoreUnavailable(
            f'etcd {what} failed: {exc}') from exc


def read_members(coord: coordination.CoordinationDriver,
                 cluster: str) -> list[dict]:
    """The group's members and their capabilities, by member id.

    A member that leaves while it is read is left out; one whose record
    cannot be decoded is listed with no capabilities.
    """
    group = group_id(cluster).encode()
    with _tooz_errors('membership read'):
        try:
            ids = coord.get_members(group).get()
        except coordination.GroupNotCreated:
            return []
        asked = {member: coord.get_member_capabilities(group, member)
                 for member in ids}
        members = []
        for member, answer in asked.items():
            try:
                caps = answer.get()
            except coordination.MemberNotJoined:
                continue
            except tooz_utils.SerializationError:
                caps = {}
            if not isinstance(caps, dict):
                caps = {}
            members.append({**caps, 'member_id': member.decode()})
    return sorted(members, key=lambda m: m['member_id'])


def list_members(backend_url: str, cluster: str,
                 http_timeout: float) -> list[dict]:
    """The live members, read by a coordinator that does not join."""
    url = tooz_driver.coordinator_url(backend_url, http_timeout, 1,
                                      reader=True)
    coord = coordination.get_coordinator(
        url, f'freezer-dr-reader-{os.getpid()}'.encode())
    coord.start(start_heart=False)
    try:
        return read_members(coord, cluster)
    finally:
        coord.stop()
