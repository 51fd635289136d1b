"""The simulated Keystone v3 API (tokens, catalog, projects, users, roles).

Bodies and errors follow Keystone: ``{"error": {"code", "title",
"message"}}``, 401 with a ``WWW-Authenticate`` header, ``X-Subject-Token``
on issued and validated tokens, the service catalog in every token.
"""
from __future__ import annotations

import typing as t

from freezer_dr.simulator import records as rec
from freezer_dr.simulator.identity import DEFAULT_DOMAIN
from freezer_dr.simulator.identity import UNAUTHORIZED
from freezer_dr.simulator.identity import Identity
from freezer_dr.simulator.state import ApiError
from freezer_dr.simulator.state import Faults
from freezer_dr.simulator.wsgi import JsonApp
from freezer_dr.simulator.wsgi import Request
from freezer_dr.simulator.wsgi import Result

TITLES = {400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
          404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
          500: 'Internal Server Error', 503: 'Service Unavailable'}
VERSION = {
    'id': 'v3.14', 'status': 'stable', 'updated': '2020-04-07T00:00:00Z',
    'media-types': [{
        'base': 'application/json',
        'type': 'application/vnd.openstack.identity-v3+json'}]}


class Catalog:
    """Endpoints published in tokens: filled in once servers listen."""

    def __init__(self, region: str = 'RegionOne') -> None:
        self.region = region
        self.services: list[tuple[str, str, str]] = []   # type, name, url

    def add(self, type_: str, name: str, url: str) -> None:
        self.services.append((type_, name, url))

    def render(self) -> list[dict[str, t.Any]]:
        out = []
        for i, (type_, name, url) in enumerate(self.services):
            out.append({
                'id': f'{i:032x}', 'type': type_, 'name': name,
                'endpoints': [
                    {'id': f'{i:030x}{j:02x}', 'interface': iface,
                     'region': self.region, 'region_id': self.region,
                     'url': url}
                    for j, iface in enumerate(('public', 'internal',
                                               'admin'))]})
        return out


class KeystoneApp(JsonApp):
    """Keystone v3 over WSGI."""

    api_name = 'keystone'

    def __init__(self, identity: Identity, catalog: Catalog,
                 faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.identity = identity
        self.catalog = catalog
        r = self.route
        r('GET', '/', self.versions)
        r('GET', '/v3', self.version)
        r('POST', '/v3/auth/tokens', self.issue_token)
        r('GET', '/v3/auth/tokens', self.check_token)
        r('HEAD', '/v3/auth/tokens', self.check_token)
        r('DELETE', '/v3/auth/tokens', self.revoke_token)
        r('GET', '/v3/auth/catalog', self.get_catalog)
        r('GET', '/v3/projects', self.list_projects)
        r('GET', '/v3/projects/{project_id}', self.get_project)
        r('GET', '/v3/users', self.list_users)
        r('GET', '/v3/users/{user_id}', self.get_user)
        r('GET', '/v3/roles', self.list_roles)
        r('GET', '/v3/role_assignments', self.role_assignments)
        r('GET', '/v3/domains/{domain_id}', self.get_domain)

    # -- plumbing ------------------------------------------------------------
    def error(self, status: int, message: str) -> Result:
        body = {'error': {'code': status, 'message': message,
                          'title': TITLES.get(status, 'Error')}}
        headers = {}
        if status == 401:
            uri = self.catalog_url()
            headers['WWW-Authenticate'] = f'Keystone uri="{uri}"'
        return status, body, headers

    def catalog_url(self) -> str:
        for type_, _name, url in self.catalog.services:
            if type_ == 'identity':
                return url
        return ''

    def before(self, req: Request, handler: t.Any) -> Result | None:
        if handler in (self.versions, self.version, self.issue_token):
            return None
        token = self.identity.validate(req.header('X-Auth-Token'))
        if token is None:
            return self.error(401, UNAUTHORIZED)
        req.context = token
        return None

    def _admin(self, req: Request) -> None:
        token: rec.Token = req.context
        roles = self.identity.roles_of(token.user_id, token.project_id)
        if not any(r.name == 'admin' for r in roles):
            raise ApiError(403, 'You are not authorized to perform the '
                                'requested action.')

    def _links(self, req: Request, path: str) -> dict[str, t.Any]:
        return {'self': req.url(path), 'previous': None, 'next': None}

    # -- versions and tokens -------------------------------------------------
    def _version_doc(self, req: Request) -> dict[str, t.Any]:
        return dict(VERSION, links=[{'rel': 'self',
                                     'href': req.url('/v3/')}])

    def versions(self, req: Request) -> Result:
        return 300, {'versions': {'values': [self._version_doc(req)]}}, {}

    def version(self, req: Request) -> Result:
        return 200, {'version': self._version_doc(req)}, {}

    def _token_body(self, token: rec.Token,
                    catalog: bool = True) -> dict[str, t.Any]:
        user = self.identity.users[token.user_id]
        body: dict[str, t.Any] = {
            'methods': token.methods,
            'user': {'id': user.id, 'name': user.name,
                     'domain': DEFAULT_DOMAIN,
                     'password_expires_at': None},
            'audit_ids': [token.audit_id],
            'issued_at': rec.iso(token.issued_at) + 'Z',
            'expires_at': rec.iso(token.expires_at) + 'Z',
        }
        if token.project_id is not None:
            project = self.identity.projects[token.project_id]
            body['project'] = {'id': project.id, 'name': project.name,
                               'domain': DEFAULT_DOMAIN}
            body['roles'] = [{'id': r.id, 'name': r.name} for r in
                             self.identity.roles_of(user.id, project.id)]
            body['is_domain'] = False
            if catalog:
                body['catalog'] = self.catalog.render()
        return {'token': body}

    def issue_token(self, req: Request) -> Result:
        token = self.identity.authenticate(req.json())
        return 201, self._token_body(token), {'X-Subject-Token': token.id}

    def _subject(self, req: Request) -> rec.Token:
        subject = req.header('X-Subject-Token')
        token = self.identity.validate(subject)
        if token is None:
            raise ApiError(404, f'Could not find token: {subject}.')
        return token

    def check_token(self, req: Request) -> Result:
        token = self._subject(req)
        nocatalog = 'nocatalog' in req.query
        if req.method == 'HEAD':
            return 200, None, {'X-Subject-Token': token.id}
        return (200, self._token_body(token, catalog=not nocatalog),
                {'X-Subject-Token': token.id})

    def revoke_token(self, req: Request) -> Result:
        self.identity.revoke(self._subject(req).id)
        return 204, None, {}

    def get_catalog(self, req: Request) -> Result:
        return 200, {'catalog': self.catalog.render(),
                     'links': self._links(req, '/v3/auth/catalog')}, {}

    # -- resources -----------------------------------------------------------
    def _project(self, req: Request, p: rec.Project) -> dict[str, t.Any]:
        return {'id': p.id, 'name': p.name, 'domain_id': p.domain_id,
                'description': p.description, 'enabled': True,
                'is_domain': False, 'parent_id': p.domain_id, 'tags': [],
                'options': {},
                'links': {'self': req.url(f'/v3/projects/{p.id}')}}

    def _user(self, req: Request, u: rec.User) -> dict[str, t.Any]:
        body = {'id': u.id, 'name': u.name, 'domain_id': u.domain_id,
                'enabled': True, 'password_expires_at': None,
                'options': {},
                'links': {'self': req.url(f'/v3/users/{u.id}')}}
        if u.email is not None:
            body['email'] = u.email
        if u.default_project_id:
            body['default_project_id'] = u.default_project_id
        return body

    def list_projects(self, req: Request) -> Result:
        self._admin(req)
        name = req.query.get('name')
        projects = [self._project(req, p)
                    for p in self.identity.projects.values()
                    if name is None or p.name == name]
        return 200, {'projects': projects,
                     'links': self._links(req, '/v3/projects')}, {}

    def get_project(self, req: Request, project_id: str) -> Result:
        token: rec.Token = req.context
        if token.project_id != project_id:
            self._admin(req)
        return 200, {'project': self._project(
            req, self.identity.project(project_id))}, {}

    def list_users(self, req: Request) -> Result:
        self._admin(req)
        name = req.query.get('name')
        users = [self._user(req, u) for u in self.identity.users.values()
                 if name is None or u.name == name]
        return 200, {'users': users,
                     'links': self._links(req, '/v3/users')}, {}

    def get_user(self, req: Request, user_id: str) -> Result:
        token: rec.Token = req.context
        if token.user_id != user_id:
            self._admin(req)
        return 200, {'user': self._user(req, self.identity.user(user_id))}, {}

    def list_roles(self, req: Request) -> Result:
        roles = [{'id': r.id, 'name': r.name, 'domain_id': None,
                  'description': None, 'options': {},
                  'links': {'self': req.url(f'/v3/roles/{r.id}')}}
                 for r in self.identity.roles.values()]
        return 200, {'roles': roles,
                     'links': self._links(req, '/v3/roles')}, {}

    def get_domain(self, req: Request, domain_id: str) -> Result:
        if domain_id != 'default':
            raise ApiError(404, f'Could not find domain: {domain_id}.')
        return 200, {'domain': dict(DEFAULT_DOMAIN, enabled=True,
                                    description='The default domain',
                                    tags=[], options={})}, {}

    def role_assignments(self, req: Request) -> Result:
        self._admin(req)
        q = req.query
        names = q.get('include_names', 'false').lower() not in (
            'false', '0', 'no', 'off')
        scope = q.get('scope.project.id')
        effective = 'effective' in q and q['effective'].lower() not in (
            'false', '0', 'no', 'off')
        if effective and scope and scope not in self.identity.projects:
            # real Keystone expands inherited roles from the project
            raise ApiError(404, f'Could not find project: {scope}.')
        out = []
        for a in self.identity.assignments:
            if q.get('scope.project.id') not in (None, a.project_id):
                continue
            if q.get('user.id') not in (None, a.user_id):
                continue
            if q.get('role.id') not in (None, a.role_id):
                continue
            role: dict[str, t.Any] = {'id': a.role_id}
            user: dict[str, t.Any] = {'id': a.user_id}
            project: dict[str, t.Any] = {'id': a.project_id}
            if names:
                role['name'] = self.identity.roles[a.role_id].name
                user['name'] = self.identity.users[a.user_id].name
                user['domain'] = DEFAULT_DOMAIN
                project['name'] = self.identity.projects[a.project_id].name
                project['domain'] = DEFAULT_DOMAIN
            out.append({
                'role': role, 'user': user, 'scope': {'project': project},
                'links': {'assignment': req.url(
                    f'/v3/projects/{a.project_id}/users/{a.user_id}'
                    f'/roles/{a.role_id}')}})
        return 200, {'role_assignments': out,
                     'links': self._links(req, '/v3/role_assignments')}, {}
