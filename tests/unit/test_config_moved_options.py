"""The compute options live in [cloud]; the old [evacuation] names work."""
from __future__ import annotations

import pytest

from freezer_dr import config
from freezer_dr import exceptions
from freezer_dr.engine import drivers as engine_drivers
from freezer_dr.engine.settings import settings_from_conf
from freezer_dr.evacuators.nova import NovaEvacuator
from tests.unit.test_cloud import CLOUDS


def load(tmp_path, text: str):
    (tmp_path / 'clouds.yaml').write_text(CLOUDS)
    path = tmp_path / 'freezer-dr.conf'
    path.write_text(f'[cloud]\ncloud = one\n'
                    f'clouds_yaml = {tmp_path / "clouds.yaml"}\n' + text)
    return config.load(['--config-file', str(path)], 'freezer-dr',
                       setup_logging=False)


def test_defaults():
    conf = config.load([], 'freezer-dr', setup_logging=False)
    assert conf.cloud.api_timeout == 5.0
    assert conf.cloud.compute_microversion == '2.94'
    assert 'api_timeout' not in conf.evacuation
    assert 'microversion' not in conf.evacuation


def test_a_config_with_the_old_names_still_works(tmp_path):
    conf = load(tmp_path, '[evacuation]\napi_timeout = 3.5\n'
                          'microversion = 2.95\n')
    assert conf.cloud.api_timeout == 3.5
    assert conf.cloud.compute_microversion == '2.95'
    settings = settings_from_conf(conf)
    assert settings.recovery.nova_call_time == 3.5
    assert settings.recovery.evacuation.api_timeout == 3.5
    evacuator = NovaEvacuator.from_config(conf)
    assert evacuator.microversion == '2.95'
    assert evacuator._conn.config.get_api_version('compute') == '2.95'
    assert evacuator._conn.session.timeout == 3.5


def test_the_new_names_win_over_the_old_ones(tmp_path):
    conf = load(tmp_path, 'api_timeout = 4.5\ncompute_microversion = 2.90\n'
                          '[evacuation]\napi_timeout = 3.5\n'
                          'microversion = 2.95\n')
    assert conf.cloud.api_timeout == 4.5
    assert conf.cloud.compute_microversion == '2.90'
    evacuator = NovaEvacuator.from_config(conf)
    assert evacuator.microversion == '2.90'
    assert evacuator.api_timeout == 4.5


def test_an_old_name_too_long_for_the_lease_is_named_by_its_new_name(
        tmp_path):
    conf = load(tmp_path, '[evacuation]\napi_timeout = 9.8\n')
    with pytest.raises(exceptions.ConfigError,
                       match=r'\[cloud\] api_timeout \(9\.8 s\)'):
        engine_drivers.check_budgets(conf, fencing=False)
