"""Server and service actions of the simulated Nova, with Nova's rules.

Evacuate follows ``nova/api/openstack/compute/evacuate.py`` and
``nova.compute.api.API.evacuate``: the target host must exist and differ
from the source, the server must be ACTIVE, SHUTOFF or ERROR with no task,
and the source compute service must be down (else 400 "Compute service of
HOST is still in use."). The move itself is asynchronous: a migration of
type ``evacuation`` goes ``accepted`` -> ``pre-migrating`` -> ``done``
(``error`` and the server ERROR when no host fits; ``failed`` and the
server ERROR on its source host when the rebuild fails). As in Nova, the
server's host changes only when the rebuild is done.
"""
from __future__ import annotations

import time
import typing as t

from oslo_log import log as logging

from freezer_dr.simulator import records as rec
from freezer_dr.simulator.state import ApiError
from freezer_dr.simulator.state import Compute

LOG = logging.getLogger(__name__)

#: first microversion where an evacuated server is left SHUTOFF
STOPPED_EVACUATE_VERSION = (2, 95)


def _invalid_state(action: str, server: rec.Server, attr: str,
                   value: str | None) -> ApiError:
    return ApiError(409, f"Cannot '{action}' instance {server.id} while "
                         f"it is in {attr} {value}")


def _check_state(action: str, server: rec.Server,
                 vm_states: t.Iterable[str]) -> None:
    if server.vm_state not in vm_states:
        raise _invalid_state(action, server, 'vm_state', server.vm_state)
    if server.task_state is not None:
        raise _invalid_state(action, server, 'task_state',
                             server.task_state)


def pick_host(compute: Compute, exclude: str, now: float) -> str | None:
    """The scheduler: the up, enabled compute host with fewest servers,
    in the cell of ``exclude`` (moves stay in their cell)."""
    best: tuple[int, str] | None = None
    source = compute.hosts.get(exclude)
    for name, host in compute.hosts.items():
        svc = host.service
        if name == exclude or svc.disabled:
            continue
        if host.cell in compute.down_cells or (
                source is not None and host.cell != source.cell):
            continue
        if not compute.service_up(svc, now):
            continue
        load = len(compute.by_host[name]) + compute.claims.get(name, 0)
        key = (load, name)
        if best is None or key < best:
            best = key
    return best[1] if best else None


def evacuate(compute: Compute, server_id: str, target: str | None,
             version: tuple[int, int], force: bool = False,
             ) -> rec.Migration:
    """Accept an evacuation (the HTTP call returns; the move goes on)."""
    with compute.lock:
        server = compute.server(server_id)
        if target is not None:
            if target not in compute.hosts:
                raise ApiError(404, f'Compute host {target} not found.')
            if server.host == target:
                raise ApiError(400, "The target host can't be the same one.")
        _check_state('evacuate', server, ('active', 'stopped', 'error'))
        now = time.time()
        source = compute.hosts[server.host]
        if compute.service_up(source.service, now):
            raise ApiError(400, f'Compute service of {source.name} is '
                                f'still in use.')
        mig = rec.Migration(
            id=len(compute.migrations) + 1, uuid=compute.new_uuid(),
            instance_uuid=server.id, source_compute=source.name,
            dest_compute=target, status='accepted',
            project_id=server.project_id, user_id=server.user_id,
            created_at=now, updated_at=None)
        compute.migrations.append(mig)
        server.task_state = 'rebuilding'
        server.updated_at = now
        # nova.compute.manager._do_rebuild_instance: target_state (2.95+)
        # applies unless the server was in ERROR; STOPPED ends STOPPED.
        stop_after = server.vm_state == 'stopped' or (
            version >= STOPPED_EVACUATE_VERSION
            and server.vm_state != 'error')
        rebuild = max(compute.settings.rebuild_time, 0.0)
        fails = compute.rng.random() < compute.faults.evacuate_failure_rate
        compute.events.at(
            now + min(0.2, rebuild / 10),
            lambda: _claim(compute, server, mig, target, force,
                           stop_after, fails, now + rebuild))
        LOG.info('evacuation %s of %s from %s accepted', mig.id, server.id,
                 source.name)
        return mig


def _claim(compute: Compute, server: rec.Server, mig: rec.Migration,
           target: str | None, force: bool, stop_after: bool,
           fails: bool, done_at: float) -> None:
    """Conductor + destination claim: pick a host or give up."""
    now = time.time()
    dest = target
    if dest is not None and not force:
        host = compute.hosts[dest]
        if host.service.disabled or not compute.service_up(host.service,
                                                           now):
            dest = None
    elif dest is None:
        dest = pick_host(compute, mig.source_compute, now)
    if dest is None:
        # conductor: NoValidHost -> migration error, server ERROR
        mig.status = 'error'
        mig.updated_at = now
        server.vm_state, server.task_state = 'error', None
        server.updated_at = now
        return
    mig.dest_compute = dest
    mig.dest_host = compute.hosts[dest].host_ip
    compute.claims[dest] = compute.claims.get(dest, 0) + 1
    mig.status = 'pre-migrating'
    mig.updated_at = now
    server.task_state = 'rebuild_spawning'
    compute.events.at(done_at, lambda: _finish(
        compute, server, mig, stop_after, fails))


def _finish(compute: Compute, server: rec.Server, mig: rec.Migration,
            stop_after: bool, fails: bool) -> None:
    """Rebuild ends: failed (ERROR on the source) or moved (done)."""
    now = time.time()
    if mig.dest_compute is not None:
        compute.claims[mig.dest_compute] -= 1
    server.task_state = None
    server.updated_at = now
    mig.updated_at = now
    if fails:
        mig.status = 'failed'
        server.vm_state = 'error'
        return
    compute.place(server, mig.dest_compute)
    server.launched_at = now
    if stop_after:
        server.vm_state, server.power_state = 'stopped', 4
    else:
        server.vm_state, server.power_state = 'active', 1
    mig.status = 'done'


def _power_action(compute: Compute, server_id: str, action: str,
                  allowed: tuple[str, ...], task: str,
                  result: tuple[str, int]) -> None:
    """Accept start/stop; the host's nova-compute carries it out.

    As in Nova the call is not refused when the host is down: the task
    state stays set until that host's nova-compute runs again.
    """
    with compute.lock:
        server = compute.server(server_id)
        _check_state(action, server, allowed)
        server.task_state = task
        now = time.time()
        server.updated_at = now
        step = compute.settings.power_action_time

        def done() -> None:
            if server.task_state != task:
                return
            host = compute.hosts.get(server.host or '')
            if host is None or not host.heartbeats(time.time()):
                compute.events.at(time.time() + max(step, 0.5), done)
                return
            server.task_state = None
            server.vm_state, server.power_state = result
            server.updated_at = time.time()
        compute.events.at(now + step, done)


def start(compute: Compute, server_id: str) -> None:
    _power_action(compute, server_id, 'start', ('stopped',),
                  'powering-on', ('active', 1))


def stop(compute: Compute, server_id: str) -> None:
    _power_action(compute, server_id, 'stop', ('active', 'error'),
                  'powering-off', ('stopped', 4))


def boot(compute: Compute, name: str, host: str, project_id: str,
         user_id: str, status: str = 'ACTIVE',
         metadata: dict[str, str] | None = None,
         tags: list[str] | None = None) -> rec.Server:
    """Create a server directly in ``status`` on ``host`` (control API)."""
    vm_state = rec.STATUS_TO_VM_STATE.get(status.upper())
    if vm_state is None or vm_state == 'building':
        raise ApiError(400, f'Invalid status {status!r}: use ACTIVE, '
                            f'SHUTOFF or ERROR.')
    with compute.lock:
        compute.host(host)
        now = time.time()
        n = len(compute.servers) + 1
        server = rec.Server(
            id=compute.new_uuid(), name=name, project_id=project_id,
            user_id=user_id, host=None, vm_state=vm_state,
            power_state=4 if vm_state == 'stopped' else 1,
            metadata=dict(metadata or {}), tags=list(tags or []),
            image_id='70a599e0-31e7-49b7-b260-868f441e862b',
            created_at=now, updated_at=now, launched_at=now,
            ip=f'192.168.{n // 250 % 250}.{n % 250 + 2}',
            instance_name=f'instance-{n:08x}')
        compute.servers[server.id] = server
        compute.place(server, host)
        return server


def update_service(compute: Compute, svc: rec.Service,
                   disabled: bool | None = None,
                   reason: str | None = None,
                   forced_down: bool | None = None) -> rec.Service:
    """Change a compute service's status / forced_down."""
    with compute.lock:
        if svc.binary != rec.COMPUTE_BINARY:
            raise ApiError(400, f'Updating a {svc.binary} service is not '
                                f'supported. Only nova-compute services '
                                f'can be updated.')
        if disabled is not None:
            svc.disabled = disabled
            svc.disabled_reason = reason if disabled else None
        if forced_down is not None:
            svc.forced_down = forced_down
        return svc
