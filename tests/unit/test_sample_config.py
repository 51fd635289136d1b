"""The committed sample config is what oslo-config-generator makes now."""
from __future__ import annotations

import os

from oslo_config import generator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ETC = os.path.join(ROOT, 'etc', 'freezer-dr')
SAMPLE = os.path.join(ETC, 'freezer-dr.conf.sample')
REGENERATE = ('regenerate it: oslo-config-generator --config-file '
              'etc/freezer-dr/freezer-dr-config-generator.conf')


def test_sample_config_is_up_to_date(tmp_path):
    output = tmp_path / 'freezer-dr.conf.sample'
    generator.main(['--config-file',
                    os.path.join(ETC, 'freezer-dr-config-generator.conf'),
                    '--output-file', str(output)])
    with open(SAMPLE) as f:
        committed = f.read()
    generated = output.read_text()
    assert '[coordination]' in generated
    assert committed == generated, f'{SAMPLE} is out of date; {REGENERATE}'
