"""What the simulated Nova answers about a cell it cannot reach.

Measured on real Nova 34 with its ``DownCellFixture`` (``tests/realnova``,
``tests/contract/test_cells.py`` holds the two together):

- ``os-services``: from 2.69 a down cell's compute services are listed
  first, as ``{binary, host, status: "UNKNOWN"}`` (no ``state``, ``id``,
  ``updated_at``...); its other services and, below 2.69, all of them are
  left out. Updating one answers 500.
- ``os-hypervisors`` (list, detail, pattern): 500 while any cell is down.
- ``servers`` lists: from 2.69, with no query but ``all_tenants``, a down
  cell's servers come first as ``{id, status: "UNKNOWN", tenant_id,
  created, links}`` (``{id, status, links}`` without detail); with any
  filter, paging or sorting, or below 2.69, they are left out.
- ``GET /servers/{id}``: below 2.69, 500; 2.69 to 2.99, a partial view;
  from 2.100, 400 (Nova's own response schema rejects the partial view).
- server actions: 500.
- ``os-migrations``: below 2.59, 500; from 2.59 the cell's migrations are
  left out.
"""
from __future__ import annotations

import typing as t

from freezer_dr.simulator import nova_views as views
from freezer_dr.simulator import records as rec
from freezer_dr.simulator.microversion import Version
from freezer_dr.simulator.state import ApiError
from freezer_dr.simulator.state import Compute

SUPPORT = (2, 69)              # cell_down_support
SHOW_SCHEMA_BREAKS = (2, 100)  # the partial show fails Nova's schema
MIGRATIONS_SKIP = (2, 59)      # paged migrations skip down cells
DB_ERROR = ('Unexpected API Error. Please contact the administrator\n'
            "<class 'oslo_db.exception.DBError'>")
NOVA_ERROR = ('Unexpected API Error. Please contact the administrator\n'
              "<class 'nova.exception.NovaException'>")


def unreachable(compute: Compute, what: str = DB_ERROR) -> ApiError:
    return ApiError(500, what)


def require_all_cells(compute: Compute) -> None:
    """For calls that read every cell and fail on one that is down."""
    if compute.down_cells:
        raise unreachable(compute)


def service(svc: rec.Service) -> dict[str, t.Any]:
    return {'binary': svc.binary, 'host': svc.host, 'status': 'UNKNOWN'}


def lists_down_servers(version: Version, query: t.Mapping[str, str]) -> bool:
    """Whether a server list shows the down cells' servers (partially):
    2.69+ and no filter, paging or sorting besides ``all_tenants``."""
    return version >= SUPPORT and set(query) <= {'all_tenants'}


def _links(base: str, s: rec.Server) -> list[dict[str, str]]:
    return views.server_brief(base, s)['links']


def server_in_list(base: str, s: rec.Server,
                   detail: bool) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {'id': s.id, 'status': 'UNKNOWN'}
    if detail:
        out['tenant_id'] = s.project_id
        out['created'] = rec.iso_z(s.created_at)
    out['links'] = _links(base, s)
    return out


def server_show(base: str, s: rec.Server, version: Version,
                admin: bool) -> dict[str, t.Any]:
    """``GET /servers/{id}`` of a server in a down cell (or its error)."""
    if version < SUPPORT:
        raise ApiError(500, NOVA_ERROR)
    image: dict[str, t.Any] = {'id': s.image_id, 'links': [
        {'rel': 'bookmark', 'href': f'{base}/images/{s.image_id}'}]}
    if version >= (2, 98):
        image['properties'] = {}
    flavor = {k: views.FLAVOR[k]
              for k in ('vcpus', 'ram', 'disk', 'ephemeral', 'swap')}
    flavor['original_name'] = views.FLAVOR['name']
    if admin:
        flavor['extra_specs'] = {}
    out: dict[str, t.Any] = {
        'id': s.id, 'status': 'UNKNOWN', 'tenant_id': s.project_id,
        'created': rec.iso_z(s.created_at), 'links': _links(base, s),
        'image': image, 'flavor': flavor,
        'OS-EXT-AZ:availability_zone': 'UNKNOWN',
        'OS-EXT-STS:power_state': 0, 'user_id': s.user_id}
    if version >= (2, 71):
        out['server_groups'] = []
    if version >= SHOW_SCHEMA_BREAKS:
        raise ApiError(400, f'Invalid input for field/attribute server. '
                            f'Value: {out}. {out} is not valid under any '
                            f'of the given schemas')
    return out


def check_migrations(compute: Compute, version: Version) -> None:
    if compute.down_cells and version < MIGRATIONS_SKIP:
        raise unreachable(compute)
