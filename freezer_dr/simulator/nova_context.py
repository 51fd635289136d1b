"""What every simulated Nova handler needs: the caller, policy, parsing."""
from __future__ import annotations

import dataclasses
import datetime
import typing as t
import urllib.parse
import uuid

from freezer_dr.simulator import microversion as mv
from freezer_dr.simulator.state import ApiError

MAX_LIMIT = 1000
TRUE = ('1', 't', 'true', 'on', 'y', 'yes')
FALSE = ('0', 'f', 'false', 'off', 'n', 'no')


@dataclasses.dataclass
class Context:
    """Who is calling, and with which microversion."""
    user_id: str
    project_id: str | None
    admin: bool
    version: mv.Version


def strict_bool(value: t.Any, field: str) -> bool:
    """oslo's bool_from_string(strict=True), with Nova's 400."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ApiError(400, f"Invalid input for field/attribute {field}. "
                        f"Value: {value}. Unrecognized value '{value}', "
                        f"acceptable values are: '0', '1', 'f', 'false', "
                        f"'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")


def next_link(req: t.Any, limit: int, marker: str | int) -> dict[str, str]:
    """Nova's ``*_links`` next entry: same query, new limit and marker."""
    query = {k: v for k, v in req.query.items() if k != 'marker'}
    query.update(limit=str(limit), marker=str(marker))
    return {'rel': 'next',
            'href': req.url(req.path + '?' + urllib.parse.urlencode(query))}


def timestamp(query: dict[str, str], field: str) -> float | None:
    """An ISO 8601 query parameter (``changes-since``) as epoch seconds."""
    value = query.get(field)
    if value is None:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        raise ApiError(400, f"Invalid input for query parameters {field}. "
                            f"Value: {value}. '{value}' is not a "
                            f"'date-time'")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def require_admin(ctx: Context, rule: str) -> Context:
    """Nova's admin-only policy rules, with Nova's 403 message."""
    if not ctx.admin:
        raise ApiError(403, f"Policy doesn't allow {rule} to be performed.")
    return ctx


def page_limit(value: str | None) -> int:
    if value is None:
        return MAX_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise ApiError(400, 'limit param must be an integer')
    if limit < 0:
        raise ApiError(400, 'limit param must be positive')
    return min(limit, MAX_LIMIT)


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
