"""Shared fixtures: real etcd, the simulated cloud, real SMTP, real Nova."""
pytest_plugins = [
    'tests.fixtures.etcd',
    'tests.fixtures.cloud',
    'tests.fixtures.smtp',
    'tests.fixtures.realnova',
]
