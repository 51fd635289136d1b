"""JSON views of the simulated Nova's records, per microversion.

Field names, presence and formats follow ``nova/api/openstack/compute/
views/*.py`` and ``services.py`` / ``hypervisors.py`` / ``migrations.py``
of nova 34, trimmed to what a simulated fake-driver cloud has.
"""
from __future__ import annotations

import hashlib
import json
import typing as t

from freezer_dr.simulator import records as rec
from freezer_dr.simulator.microversion import Version
from freezer_dr.simulator.state import Compute

FLAVOR = {'id': '1', 'name': 'm1.small', 'vcpus': 1, 'ram': 512,
          'disk': 1, 'ephemeral': 0, 'swap': 0}
CPU_INFO = {'arch': 'x86_64', 'model': 'Nehalem', 'vendor': 'Intel',
            'features': ['pge', 'clflush'],
            'topology': {'sockets': 1, 'cores': 32, 'threads': 2}}
PROGRESS_STATUSES = ('ACTIVE', 'BUILD', 'REBUILD', 'RESIZE',
                     'VERIFY_RESIZE', 'MIGRATING')


def host_status(compute: Compute, host: str | None, now: float) -> str:
    """``host_status`` (2.16+): nova.compute.api.get_instance_host_status."""
    if not host:
        return ''
    svc = compute.hosts[host].service
    if svc.forced_down:
        return 'DOWN'
    if svc.disabled:
        return 'MAINTENANCE'
    return 'UP' if compute.service_up(svc, now) else 'UNKNOWN'


def server(base: str, compute: Compute, s: rec.Server, version: Version,
           admin: bool, now: float) -> dict[str, t.Any]:
    """One server as ``GET /servers/detail`` and ``/servers/{id}`` show it."""
    status = s.status
    image: dict[str, t.Any] = {'id': s.image_id, 'links': [
        {'rel': 'bookmark', 'href': f'{base}/images/{s.image_id}'}]}
    if version >= (2, 98):
        image['properties'] = {}
    host_id = (hashlib.sha224((s.project_id + s.host).encode()).hexdigest()
               if s.host else '')
    if version >= (2, 47):
        flavor: dict[str, t.Any] = {
            'vcpus': FLAVOR['vcpus'], 'ram': FLAVOR['ram'],
            'disk': FLAVOR['disk'], 'ephemeral': FLAVOR['ephemeral'],
            'swap': FLAVOR['swap'], 'original_name': FLAVOR['name']}
        if admin:
            flavor['extra_specs'] = {}
    else:
        flavor = {'id': s.flavor_id, 'links': [
            {'rel': 'bookmark', 'href': f'{base}/flavors/{s.flavor_id}'}]}
    out: dict[str, t.Any] = {
        'accessIPv4': '', 'accessIPv6': '',
        'addresses': {'private': [{
            'version': 4, 'addr': s.ip, 'OS-EXT-IPS:type': 'fixed',
            'OS-EXT-IPS-MAC:mac_addr':
                f'fa:16:3e:{s.id[0:2]}:{s.id[2:4]}:{s.id[4:6]}'}]},
        'created': rec.iso_z(s.created_at),
        'flavor': flavor,
        'hostId': host_id,
        'id': s.id,
        'image': image,
        'links': [{'rel': 'self', 'href': f'{base}/v2.1/servers/{s.id}'},
                  {'rel': 'bookmark', 'href': f'{base}/servers/{s.id}'}],
        'metadata': dict(s.metadata),
        'name': s.name,
        'status': status,
        'tenant_id': s.project_id,
        'user_id': s.user_id,
        'updated': rec.iso_z(s.updated_at),
        'OS-DCF:diskConfig': 'MANUAL',
        'OS-EXT-AZ:availability_zone': 'nova' if s.host else '',
        'config_drive': '',
        'key_name': None,
        'OS-SRV-USG:launched_at': rec.iso(s.launched_at),
        'OS-SRV-USG:terminated_at': None,
        'security_groups': [{'name': 'default'}],
        'OS-EXT-STS:task_state': s.task_state,
        'OS-EXT-STS:vm_state': s.vm_state,
        'OS-EXT-STS:power_state': s.power_state,
        'os-extended-volumes:volumes_attached': [],
    }
    if status in PROGRESS_STATUSES:
        out['progress'] = 0
    if admin:
        out['OS-EXT-SRV-ATTR:host'] = s.host
        out['OS-EXT-SRV-ATTR:instance_name'] = s.instance_name
        out['OS-EXT-SRV-ATTR:hypervisor_hostname'] = s.host
        if version >= (2, 3):
            out.update({
                'OS-EXT-SRV-ATTR:hostname': s.name,
                'OS-EXT-SRV-ATTR:kernel_id': '',
                'OS-EXT-SRV-ATTR:launch_index': 0,
                'OS-EXT-SRV-ATTR:ramdisk_id': '',
                'OS-EXT-SRV-ATTR:reservation_id': 'r-' + s.id[:8],
                'OS-EXT-SRV-ATTR:root_device_name': '/dev/vda',
                'OS-EXT-SRV-ATTR:user_data': None})
    elif version >= (2, 90):
        out['OS-EXT-SRV-ATTR:hostname'] = s.name
    if version >= (2, 9):
        out['locked'] = False
    if version >= (2, 16) and admin:
        out['host_status'] = host_status(compute, s.host, now)
    if version >= (2, 19):
        out['description'] = None
    if version >= (2, 26):
        out['tags'] = list(s.tags)
    if version >= (2, 63):
        out['trusted_image_certificates'] = None
    if version >= (2, 73):
        out['locked_reason'] = None
    if version >= (2, 96):
        out['pinned_availability_zone'] = None
    if version >= (2, 100):
        out['scheduler_hints'] = {}
    return out


def server_brief(base: str, s: rec.Server) -> dict[str, t.Any]:
    return {'id': s.id, 'name': s.name, 'links': [
        {'rel': 'self', 'href': f'{base}/v2.1/servers/{s.id}'},
        {'rel': 'bookmark', 'href': f'{base}/servers/{s.id}'}]}


def service(compute: Compute, svc: rec.Service, version: Version,
            now: float) -> dict[str, t.Any]:
    updated = compute.service_updated_at(svc, now)
    out: dict[str, t.Any] = {
        'binary': svc.binary, 'host': svc.host,
        'id': svc.uuid if version >= (2, 53) else svc.id,
        'zone': svc.zone,
        'status': 'disabled' if svc.disabled else 'enabled',
        'state': 'up' if compute.service_up(svc, now) else 'down',
        'updated_at': rec.iso(updated),
        'disabled_reason': svc.disabled_reason,
    }
    if version >= (2, 11):
        out['forced_down'] = svc.forced_down
    return out


def hypervisor(compute: Compute, host: rec.Host, version: Version,
               now: float, detail: bool = True,
               servers: list[rec.Server] | None = None) -> dict[str, t.Any]:
    svc = host.service
    uuid_ids = version >= (2, 53)
    out: dict[str, t.Any] = {
        'id': host.hypervisor_uuid if uuid_ids else host.hypervisor_id,
        'hypervisor_hostname': host.name,
        'state': 'up' if compute.service_up(svc, now) else 'down',
        'status': 'disabled' if svc.disabled else 'enabled',
    }
    if detail:
        out.update({
            'host_ip': host.host_ip, 'hypervisor_type': 'fake',
            'hypervisor_version': 1000,
            'service': {'host': host.name,
                        'id': svc.uuid if uuid_ids else svc.id,
                        'disabled_reason': svc.disabled_reason}})
        if version < (2, 88):
            used = len(compute.by_host[host.name])
            out.update({
                'vcpus': 64, 'memory_mb': 131072, 'local_gb': 2048,
                'vcpus_used': used, 'memory_mb_used': 512 * used,
                'local_gb_used': used, 'free_ram_mb': 131072 - 512 * used,
                'free_disk_gb': 2048 - used, 'current_workload': 0,
                'running_vms': used, 'disk_available_least': 2048 - used})
            out['cpu_info'] = CPU_INFO if version >= (2, 28) else json.dumps(
                CPU_INFO)
        else:
            out['uptime'] = None
    if servers is not None and (servers or version >= (2, 75)):
        out['servers'] = [{'uuid': s.id, 'name': s.instance_name}
                          for s in servers]
    return out


def migration(base: str, m: rec.Migration,
              version: Version) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {
        'id': m.id, 'instance_uuid': m.instance_uuid,
        'source_compute': m.source_compute, 'source_node': m.source_compute,
        'dest_compute': m.dest_compute, 'dest_node': m.dest_compute,
        'dest_host': m.dest_host, 'status': m.status,
        'old_instance_type_id': None, 'new_instance_type_id': None,
        'created_at': rec.iso(m.created_at),
        'updated_at': rec.iso(m.updated_at),
    }
    if version >= (2, 23):
        out['migration_type'] = m.migration_type
    if version >= (2, 59):
        out['uuid'] = m.uuid
    if version >= (2, 80):
        out['user_id'] = m.user_id
        out['project_id'] = m.project_id
    return out
