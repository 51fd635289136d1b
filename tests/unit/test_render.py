"""Rendering helpers: timings, outcomes, recovery views, template lookup."""
from __future__ import annotations

import pytest

from freezer_dr import exceptions
from freezer_dr.model import InstanceRecord
from freezer_dr.model import RecoveryRecord
from freezer_dr.notifiers import render

T0 = 1_795_000_000.0


def _record() -> dict:
    rec = RecoveryRecord(
        id='r-1', host='compute-3', step='done', created_at=T0,
        finished_at=T0 + 75.0, reason='3 of 4 instances evacuated',
        fence={'host': 'compute-3', 'success': True, 'level': 'ipmi',
               'power_state': 'off', 'started_at': T0 + 1.0,
               'finished_at': T0 + 3.5, 'detail': ''},
        instances=[
            InstanceRecord('i-1', 'web-1', 'p-a', state='done',
                           target_host='compute-1', requested_at=T0 + 4.0,
                           finished_at=T0 + 20.0),
            InstanceRecord('i-2', 'db-1', 'p-b', state='failed',
                           error='rebuild timed out', requested_at=T0 + 4.2,
                           finished_at=T0 + 70.0),
            InstanceRecord('i-3', 'old', 'p-b', state='skipped',
                           error='ERROR instances are skipped'),
            InstanceRecord('i-4', 'web-2', 'p-a', state='done',
                           target_host='compute-2', requested_at=T0 + 4.1,
                           finished_at=T0 + 30.0),
        ])
    return rec.to_dict()


@pytest.mark.parametrize('seconds, text', [
    (None, '-'), (0.25, '250 ms'), (3.24, '3.2 s'), (59.94, '59.9 s'),
    (125, '2 min 5 s'), (3780, '1 h 3 min'), (-2, '-2.0 s')])
def test_format_duration(seconds, text):
    assert render.format_duration(seconds) == text


def test_format_time_is_utc_and_dash_for_missing():
    assert render.format_time(0) == '-'
    assert render.format_time(None) == '-'
    assert render.format_time(86400 + 3661) == '1970-01-02 01:01:01 UTC'


def test_instance_outcomes_say_where_or_why():
    view = render.recovery_view(_record())
    outcomes = {i['id']: i['outcome'] for i in view['instances']}
    assert outcomes == {
        'i-1': 'evacuated to compute-1',
        'i-2': 'evacuation failed: rebuild timed out',
        'i-3': 'skipped: ERROR instances are skipped',
        'i-4': 'evacuated to compute-2',
    }
    assert render.instance_outcome({'state': 'requested'}) == (
        'evacuation requested, completion not confirmed')
    assert render.instance_outcome({'state': 'pending'}) == 'not evacuated'


def test_recovery_view_timings_and_fence_evidence():
    view = render.recovery_view(_record())
    assert view['counts'] == {'done': 2, 'failed': 1, 'skipped': 1}
    assert view['fence']['level'] == 'ipmi'
    assert view['fence']['power_state'] == 'off'
    assert view['fence']['duration'] == pytest.approx(2.5)
    timings = view['timings']
    assert timings['detected_at'] == T0
    assert timings['fenced_after'] == pytest.approx(3.5)
    assert timings['first_evacuation_after'] == pytest.approx(4.0)
    assert timings['last_evacuation_after'] == pytest.approx(70.0)
    assert timings['total'] == pytest.approx(75.0)


def test_recovery_view_without_fence_or_instances():
    view = render.recovery_view(
        RecoveryRecord(id='r-2', host='c9', created_at=T0).to_dict())
    assert view['fence']['success'] is False
    assert view['fence']['power_state'] == 'unknown'
    assert view['timings']['first_evacuation_after'] is None
    assert view['timings']['total'] is None


def test_html_is_escaped_and_text_is_not(tmp_path):
    (tmp_path / 'x.subject').write_text('{{ v }}\n')
    (tmp_path / 'x.txt').write_text('{{ v }}')
    (tmp_path / 'x.html').write_text('<p>{{ v }}</p>')
    env = render.template_environment(str(tmp_path))
    msg = render.render_message(env, 'x', {'v': '<b>&'})
    assert msg.subject == '<b>&'
    assert msg.text == '<b>&'
    assert msg.html == '<p>&lt;b&gt;&amp;</p>'


def test_override_dir_wins_and_builtins_fill_the_rest(tmp_path):
    (tmp_path / 'admin_alert.subject').write_text('OVERRIDDEN {{ host }}')
    env = render.template_environment(str(tmp_path))
    render.check_templates(env, ['admin_alert', 'user_recovery'])
    src = env.loader.get_source(env, 'admin_alert.subject')[0]
    assert src == 'OVERRIDDEN {{ host }}'
    assert 'Hello' in env.loader.get_source(env, 'user_recovery.txt')[0]


def test_broken_override_is_a_config_error_naming_the_file(tmp_path):
    (tmp_path / 'admin_alert.txt').write_text('{% if %}')
    env = render.template_environment(str(tmp_path))
    with pytest.raises(exceptions.ConfigError, match='admin_alert.txt'):
        render.check_templates(env, ['admin_alert'])


def test_missing_override_dir_is_a_config_error(tmp_path):
    with pytest.raises(exceptions.ConfigError, match='not a directory'):
        render.template_environment(str(tmp_path / 'nope'))


def test_undefined_name_at_render_is_notify_failed(tmp_path):
    for part in render.PARTS:
        (tmp_path / f'y.{part}').write_text('{{ missing.attr }}')
    env = render.template_environment(str(tmp_path))
    with pytest.raises(exceptions.NotifyFailed, match='template y'):
        render.render_message(env, 'y', {})


def test_builtin_templates_render_every_message():
    env = render.template_environment()
    view = render.recovery_view(_record())
    ctx = {'event': {'summary': 'host compute-3: done', 'details': {}},
           'host': 'compute-3', 'recovery': view, 'subject_prefix': '[x]',
           'kind_title': 'Recovery finished',
           'user': {'name': 'alice', 'email': 'a@example.org'},
           'projects': [{'id': 'p-a', 'name': 'alpha',
                         'instances': view['instances'][:1]}]}
    admin = render.render_message(env, 'admin_recovery', ctx)
    assert admin.subject == (
        '[x] Recovery of compute-3 done: 2 of 4 instances evacuated')
    for part in (admin.text, admin.html):
        assert 'ipmi' in part and 'off' in part
        assert 'rebuild timed out' in part and '1 min 10 s' in part
    user = render.render_message(env, 'user_recovery', ctx)
    assert 'web-1' in user.text and 'db-1' not in user.text
    alert = render.render_message(env, 'admin_alert', {
        **ctx, 'recovery': None, 'kind_title': 'Storm guard',
        'event': {'summary': '4 of 10 hosts down', 'details': {'down': 4}}})
    assert alert.subject == '[x] Storm guard on compute-3: 4 of 10 hosts down'
    assert 'down: 4' in alert.text
