""".zuul.yaml: valid, every job and playbook it names exists, vars set."""
from __future__ import annotations

import configparser
import pathlib
import re
import typing as t

import jinja2
import jinja2.meta
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ZUUL = ROOT / '.zuul.yaml'

# Jobs and templates of openstack/openstack-zuul-jobs, zuul/zuul-jobs and
# openstack/devstack this file may use without defining them.
UPSTREAM_JOBS = {
    'base', 'unittests', 'tox', 'openstack-tox', 'openstack-tox-pep8',
    'openstack-tox-py310', 'openstack-tox-py311', 'openstack-tox-py312',
    'openstack-tox-docs', 'build-openstack-releasenotes',
    'devstack', 'devstack-minimal', 'devstack-multinode',
}
UPSTREAM_TEMPLATES = {
    'publish-openstack-docs-pti', 'release-notes-jobs-python3',
    'openstack-python3-jobs', 'check-requirements',
}
# Roles a job gets from the projects in its ``roles:`` list.
UPSTREAM_ROLES = {
    'openstack/devstack': {
        'orchestrate-devstack', 'run-devstack', 'write-devstack-local-conf',
        'setup-devstack-log-dir', 'export-devstack-journal',
        'fetch-devstack-log-dir'},
}
# Variables Ansible and Zuul define.
BUILTIN_VARS = {'item', 'zuul', 'ansible_user_dir', 'ansible_hostname',
                'inventory_hostname', 'hostvars', 'groups', 'range',
                'lookup', 'query', 'omit'}
# Names in a loop: ``item``; names registered by tasks are collected.
# Ansible's filters the playbooks may use (Jinja's own are known to it).
ANSIBLE_FILTERS = ('from_json', 'to_json', 'from_yaml', 'to_yaml', 'bool',
                   'b64decode', 'b64encode', 'regex_search', 'regex_replace',
                   'mandatory', 'quote')
EXPRESSION_KEYS = {'when', 'until', 'failed_when', 'changed_when', 'that'}
PLAYBOOK_KEYS = ('pre-run', 'run', 'post-run', 'cleanup-run')


def load_zuul() -> list[dict[str, t.Any]]:
    config = yaml.safe_load(ZUUL.read_text())
    assert isinstance(config, list), '.zuul.yaml is a list of items'
    for item in config:
        assert isinstance(item, dict) and len(item) == 1, item
        kind = next(iter(item))
        assert kind in {'job', 'project', 'project-template', 'nodeset',
                        'secret', 'semaphore'}, kind
    return config


def jobs(config) -> dict[str, dict[str, t.Any]]:
    found = {}
    for item in config:
        if 'job' in item:
            job = item['job']
            assert job['name'] not in found, f'job {job["name"]} twice'
            found[job['name']] = job
    return found


def projects(config) -> list[dict[str, t.Any]]:
    return [item['project'] for item in config if 'project' in item]


def pipeline_jobs(project: dict[str, t.Any]) -> list[tuple[str, str, dict]]:
    """(pipeline, job name, variant dict) for each job of each pipeline."""
    found = []
    for pipeline, body in project.items():
        if pipeline in ('templates', 'name', 'queue', 'vars',
                        'default-branch', 'merge-mode'):
            continue
        for entry in body['jobs']:
            if isinstance(entry, str):
                found.append((pipeline, entry, {}))
            else:
                (name, variant), = entry.items()
                found.append((pipeline, name, variant or {}))
    return found


def playbooks_of(job: dict[str, t.Any]) -> list[str]:
    paths = []
    for key in PLAYBOOK_KEYS:
        value = job.get(key, [])
        paths.extend([value] if isinstance(value, str) else value)
    return paths


def tox_envs() -> set[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / 'tox.ini')
    named = {s.split(':', 1)[1] for s in parser.sections()
             if s.startswith('testenv:')}
    listed = {e.strip() for e in parser['tox']['envlist'].split(',')}
    return named | listed


def bindep_profiles() -> set[str]:
    profiles = set()
    for line in (ROOT / 'bindep.txt').read_text().splitlines():
        match = re.search(r'\[([^\]]*)\]', line.split('#', 1)[0])
        if match:
            profiles.update(s.lstrip('!') for s in match.group(1).split()
                            if not s.lstrip('!').startswith('platform:'))
    return profiles


# -- the file itself ---------------------------------------------------

def test_every_pipeline_job_is_defined_or_upstream():
    config = load_zuul()
    defined = jobs(config)
    names = [name for project in projects(config)
             for _, name, _ in pipeline_jobs(project)]
    assert 'freezer-dr-devstack' in names
    unknown = [n for n in names if n not in defined and n not in UPSTREAM_JOBS]
    assert not unknown, f'jobs neither defined nor upstream: {unknown}'


def test_check_and_gate_run_the_same_voting_jobs():
    config = load_zuul()
    for project in projects(config):
        voting = {}
        for pipeline, name, variant in pipeline_jobs(project):
            if variant.get('voting', True):
                voting.setdefault(pipeline, set()).add(name)
        assert voting['check'] == voting['gate']


def test_every_parent_and_template_is_known():
    config = load_zuul()
    defined = jobs(config)
    for name, job in defined.items():
        parent = job.get('parent', 'base')
        assert parent in defined or parent in UPSTREAM_JOBS, (name, parent)
    for project in projects(config):
        for template in project.get('templates', []):
            assert template in UPSTREAM_TEMPLATES, template


def test_every_playbook_exists_and_is_a_list_of_plays():
    for name, job in jobs(load_zuul()).items():
        for path in playbooks_of(job):
            playbook = ROOT / path
            assert playbook.is_file(), f'{name}: {path} does not exist'
            plays = yaml.safe_load(playbook.read_text())
            assert isinstance(plays, list) and plays, path
            for play in plays:
                assert 'hosts' in play, f'{path}: a play without hosts'


def test_every_role_a_playbook_uses_exists():
    for name, job in jobs(load_zuul()).items():
        available = set()
        for source in job.get('roles', []):
            project = source['zuul']
            assert project in UPSTREAM_ROLES, (name, project)
            available |= UPSTREAM_ROLES[project]
        for path in playbooks_of(job):
            for role in roles_used(yaml.safe_load((ROOT / path).read_text())):
                local = ROOT / 'roles' / role
                assert role in available or local.is_dir(), (
                    f'{path}: role {role} is neither in roles/ nor in a '
                    f'project the job {name} lists under roles')


def test_tox_jobs_name_tox_envs_and_bindep_profiles():
    config = load_zuul()
    envs = tox_envs()
    profiles = bindep_profiles()
    variants = [job.get('vars', {}) for job in jobs(config).values()]
    variants += [v.get('vars', {}) for p in projects(config)
                 for _, _, v in pipeline_jobs(p)]
    for job_vars in variants:
        if 'tox_envlist' in job_vars:
            assert job_vars['tox_envlist'] in envs, job_vars['tox_envlist']
        for profile in str(job_vars.get('bindep_profile', '')).split():
            assert profile in profiles, f'bindep.txt has no {profile} profile'
    assert tox_has_default_testenv(), 'openstack-tox-py3* run [testenv]'


def tox_has_default_testenv() -> bool:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / 'tox.ini')
    return parser.has_section('testenv')


# -- the devstack job --------------------------------------------------

def devstack_job() -> dict[str, t.Any]:
    return jobs(load_zuul())['freezer-dr-devstack']


def test_devstack_job_enables_the_plugin_and_its_services():
    job = devstack_job()
    assert job['parent'] == 'devstack'
    job_vars = job['vars']
    assert job_vars['devstack_plugins']['freezer-dr'].endswith('/freezer-dr')
    services = job_vars['devstack_services']
    assert services['fdr-engine'] is True and services['etcd3'] is True
    settings = (ROOT / 'devstack' / 'settings').read_text()
    assert 'enable_service fdr-engine' in settings
    assert 'openstack/freezer-dr' in job['required-projects']


def test_devstack_job_has_a_second_compute_host():
    localrc = devstack_job()['vars']['devstack_localrc']
    assert localrc['VIRT_DRIVER'] == 'fake'
    count = int(localrc['NUMBER_FAKE_NOVA_COMPUTE'])
    assert count >= 2
    # lib/nova names fake compute N "${HOSTNAME}N": all in the inventory
    hosts = localrc['FREEZER_DR_COMPUTE_HOSTS'].strip('"').split()
    assert hosts == [f'${{HOSTNAME}}{n}' for n in range(1, count + 1)]


def test_devstack_localrc_sets_only_plugin_settings_that_exist():
    settings = (ROOT / 'devstack' / 'settings').read_text()
    defined = set(re.findall(r'^(FREEZER_DR_[A-Z_]+)=', settings, re.M))
    localrc = devstack_job()['vars']['devstack_localrc']
    ours = {k for k in localrc if k.startswith('FREEZER_DR_')}
    assert ours and ours <= defined, ours - defined


def test_every_variable_the_playbooks_use_is_set():
    job = devstack_job()
    job_vars = set(job['vars'])
    for path in playbooks_of(job):
        plays = yaml.safe_load((ROOT / path).read_text())
        for play in plays:
            missing = undefined_names(play, job_vars)
            assert not missing, f'{path}: {sorted(missing)} are not set'


def test_the_vars_check_finds_a_missing_variable():
    play = {'hosts': 'controller', 'vars': {'a': '{{ b }}'},
            'tasks': [{'command': 'x {{ a }} {{ nowhere }}',
                       'register': 'out'},
                      {'assert': {'that': ['out.rc == 0', 'gone | bool']}}]}
    assert undefined_names(play, {'b'}) == {'nowhere', 'gone'}


# -- helpers to read playbooks ------------------------------------------

def roles_used(plays: list[dict[str, t.Any]]) -> set[str]:
    found = set()
    for play in plays:
        for role in play.get('roles', []):
            found.add(role if isinstance(role, str) else role['role'])
        for task in tasks_of(play):
            for key in ('include_role', 'import_role'):
                if key in task:
                    found.add(task[key]['name'])
    return found


def tasks_of(play: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    found = []
    pending = [task for key in ('pre_tasks', 'tasks', 'post_tasks')
               for task in play.get(key, [])]
    while pending:
        task = pending.pop()
        found.append(task)
        for key in ('block', 'rescue', 'always'):
            pending.extend(task.get(key, []))
    return found


def names_in(value: t.Any, expression: bool = False) -> set[str]:
    """Undeclared Jinja names in a templated value (or a bare expression)."""
    env = jinja2.Environment()
    env.filters.update({name: str for name in ANSIBLE_FILTERS})
    if isinstance(value, dict):
        return set().union(*[names_in(v, expression) for v in value.values()])
    if isinstance(value, list):
        return set().union(*[names_in(v, expression) for v in value])
    if not isinstance(value, str):
        return set()
    text = '{{ ' + value + ' }}' if expression else value
    if '{{' not in text and '{%' not in text:
        return set()
    return jinja2.meta.find_undeclared_variables(env.parse(text))


def undefined_names(play: dict[str, t.Any], job_vars: set[str]) -> set[str]:
    defined = set(job_vars) | BUILTIN_VARS | set(play.get('vars', {}))
    used = names_in(play.get('vars', {})) | names_in(
        play.get('environment', {}))
    for task in tasks_of(play):
        defined.add(task.get('register', ''))
        for module in ('set_fact',):
            defined |= set(task.get(module, {}))
        for key, value in task.items():
            if key in EXPRESSION_KEYS:
                used |= names_in(value, expression=True)
            elif key == 'assert':
                used |= names_in(value.get('that', []), expression=True)
                used |= names_in(value.get('fail_msg', ''))
            elif key not in ('register', 'name'):
                used |= names_in(value)
    return used - defined


@pytest.mark.parametrize('path', sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / 'playbooks').rglob('*.yaml')))
def test_every_playbook_in_the_tree_is_used(path):
    used = {p for job in jobs(load_zuul()).values() for p in playbooks_of(job)}
    assert path in used, f'{path} is not run by any job'
