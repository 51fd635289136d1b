"""Rendering for notifications: Jinja2 templates and readable timings.

Pure helpers, no I/O besides reading templates: a template environment
that looks in an operator's override directory first and then in the
built-in ``templates/``; a view of a recovery record (outcomes, fence
evidence, timings) that templates can print as they like.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import typing as t

import jinja2

from freezer_dr import exceptions

BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'templates')
PARTS = ('subject', 'txt', 'html')


@dataclasses.dataclass(frozen=True)
class RenderedMessage:
    """A message's three parts, ready for the transport."""
    subject: str
    text: str
    html: str


def template_environment(override_dir: str | None = None
                         ) -> jinja2.Environment:
    """Templates from ``override_dir`` (if any), then the built-in ones.

    HTML templates are autoescaped; undefined names are errors.
    """
    search = [BUILTIN_DIR]
    if override_dir:
        if not os.path.isdir(override_dir):
            raise exceptions.ConfigError(
                f'templates_dir {override_dir} is not a directory')
        search.insert(0, override_dir)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=('html',), default_for_string=False,
            default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters['duration'] = format_duration
    env.filters['when'] = format_time
    return env


def check_templates(env: jinja2.Environment, names: t.Iterable[str]) -> None:
    """Load every part of every message ``names``; ConfigError if broken."""
    for name in names:
        for part in PARTS:
            file_name = f'{name}.{part}'
            try:
                env.get_template(file_name)
            except jinja2.TemplateNotFound:
                raise exceptions.ConfigError(
                    f'template {file_name} not found')
            except jinja2.TemplateSyntaxError as e:
                raise exceptions.ConfigError(
                    f'template {e.filename or file_name} line {e.lineno}: '
                    f'{e.message}')


def render_message(env: jinja2.Environment, name: str,
                   context: dict[str, t.Any]) -> RenderedMessage:
    """Render ``name.subject``, ``name.txt`` and ``name.html``."""
    try:
        subject, text, html = (env.get_template(f'{name}.{part}')
                               .render(context) for part in PARTS)
    except jinja2.TemplateError as e:
        raise exceptions.NotifyFailed(f'template {name}: {e}')
    return RenderedMessage(' '.join(subject.split()), text, html)


def format_duration(seconds: float | None) -> str:
    """``850 ms``, ``3.2 s``, ``2 min 5 s``, ``1 h 3 min``; ``-`` if None."""
    if seconds is None:
        return '-'
    if seconds < 0:
        return '-' + format_duration(-seconds)
    if seconds < 1:
        return f'{seconds * 1000:.0f} ms'
    if seconds < 60:
        return f'{seconds:.1f} s'
    whole = round(seconds)
    if whole < 3600:
        return f'{whole // 60} min {whole % 60} s'
    return f'{whole // 3600} h {whole % 3600 // 60} min'


def format_time(ts: float | None) -> str:
    """Wall-clock seconds as ``2026-11-26 09:40:12 UTC``; ``-`` if None."""
    if not ts:
        return '-'
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return dt.strftime('%Y-%m-%d %H:%M:%S UTC')


def instance_outcome(instance: dict[str, t.Any]) -> str:
    """One phrase saying what became of an instance."""
    state = instance.get('state')
    error = instance.get('error')
    if state == 'done':
        return f"evacuated to {instance.get('target_host') or '?'}"
    if state == 'failed':
        return f"evacuation failed: {error or 'unknown error'}"
    if state == 'skipped':
        return f"skipped: {error}" if error else 'skipped'
    if state == 'requested':
        return 'evacuation requested, completion not confirmed'
    return 'not evacuated'


def instance_view(instance: dict[str, t.Any]) -> dict[str, t.Any]:
    """An instance record plus its ``outcome`` phrase."""
    return {**instance, 'outcome': instance_outcome(instance)}


def recovery_view(recovery: dict[str, t.Any]) -> dict[str, t.Any]:
    """A recovery record shaped for templates.

    Adds ``instances`` with outcomes, ``counts`` per state, ``fence``
    (level, power state, time, duration) and ``timings`` (seconds from
    the recovery's creation: fence done, first evacuation requested,
    last evacuation finished, total).
    """
    created = recovery.get('created_at') or 0.0
    instances = [instance_view(i) for i in recovery.get('instances', [])]
    counts: dict[str, int] = {}
    for inst in instances:
        counts[inst['state']] = counts.get(inst['state'], 0) + 1
    fence = recovery.get('fence') or {}
    fence_view = {
        'success': bool(fence.get('success')),
        'level': fence.get('level') or '-',
        'power_state': fence.get('power_state') or 'unknown',
        'detail': fence.get('detail') or '',
        'at': fence.get('finished_at') or None,
        'duration': _span(fence.get('started_at'), fence.get('finished_at')),
    }
    requested = [i['requested_at'] for i in instances
                 if i.get('requested_at')]
    finished = [i['finished_at'] for i in instances
                if i.get('finished_at')]

    def since_created(ts: float | None) -> float | None:
        return ts - created if ts and created else None

    timings = {
        'detected_at': created or None,
        'fenced_after': since_created(fence.get('finished_at')),
        'first_evacuation_after': since_created(min(requested, default=0)),
        'last_evacuation_after': since_created(max(finished, default=0)),
        'total': since_created(recovery.get('finished_at')),
    }
    return {**recovery, 'instances': instances, 'counts': counts,
            'fence': fence_view, 'timings': timings}


def _span(start: float | None, end: float | None) -> float | None:
    return end - start if start and end else None
