"""Configuration loading: one clear line and exit code 2 on bad input."""
from __future__ import annotations

import socket

import pytest

from freezer_dr import config
from freezer_dr.cmd import service as service_cmd


def write(tmp_path, text: str) -> str:
    path = tmp_path / 'freezer-dr.conf'
    path.write_text(text)
    return str(path)


def test_load_reads_the_file_into_a_private_config(tmp_path):
    path = write(tmp_path, '[coordination]\ncluster = east\nlease_ttl = 6\n')
    conf = config.load(['--config-file', path], 'freezer-dr',
                       setup_logging=False)
    assert conf.coordination.cluster == 'east'
    assert conf.coordination.lease_ttl == 6.0
    assert config.validate_coordination(conf) == 2.0  # ttl / 3
    other = config.load([], 'freezer-dr', setup_logging=False)
    assert other.coordination.cluster == 'default'


def test_member_id_defaults_to_the_host_name(tmp_path):
    conf = config.load(['--config-file', write(tmp_path, '')], 'freezer-dr',
                       setup_logging=False)
    assert config.member_id(conf) == socket.gethostname()


def test_bad_value_names_file_section_and_option(tmp_path, capsys):
    path = write(tmp_path, '[coordination]\nlease_ttl = soon\n')
    with pytest.raises(SystemExit) as exc:
        config.load(['--config-file', path], 'freezer-dr',
                    setup_logging=False)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('freezer-dr: error: ')
    assert path in err and '[coordination] lease_ttl' in err
    assert len(err.splitlines()) == 1


def test_value_out_of_range_in_a_rarely_used_group_fails_at_start(
        tmp_path, capsys):
    path = write(tmp_path, '[email]\nsmtp_port = 99999\n')
    with pytest.raises(SystemExit) as exc:
        config.load(['--config-file', path], 'freezer-dr',
                    setup_logging=False)
    assert exc.value.code == 2
    assert '[email] smtp_port' in capsys.readouterr().err


def test_missing_config_file_exits_2(tmp_path, capsys):
    missing = str(tmp_path / 'nope.conf')
    with pytest.raises(SystemExit) as exc:
        config.load(['--config-file', missing], 'freezer-dr',
                    setup_logging=False)
    assert exc.value.code == 2
    assert missing in capsys.readouterr().err


def test_unparsable_file_exits_2(tmp_path, capsys):
    path = write(tmp_path, 'this is not ini\n')
    with pytest.raises(SystemExit) as exc:
        config.load(['--config-file', path], 'freezer-dr',
                    setup_logging=False)
    assert exc.value.code == 2
    assert path in capsys.readouterr().err


@pytest.mark.parametrize('text, option', [
    ('[coordination]\nbackend_url = etcd://127.0.0.1:2379\n',
     '[coordination] backend_url'),
    ('[coordination]\nlease_ttl = 3\nhttp_timeout = 2\n',
     '[coordination] http_timeout'),
    ('[coordination]\nlease_ttl = 4\npoll_interval = 3\n',
     '[coordination] poll_interval'),
    ('[coordination]\ncluster = a/b\n', '[coordination] cluster'),
])
def test_service_refuses_bad_coordination_settings(tmp_path, capsys, text,
                                                   option):
    path = write(tmp_path, text)
    with pytest.raises(SystemExit) as exc:
        service_cmd.main(['--config-file', path])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err, err
