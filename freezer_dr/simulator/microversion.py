"""Compute API microversion negotiation, as Nova does it.

The request names a version in ``OpenStack-API-Version: compute X.Y`` or
the legacy ``X-OpenStack-Nova-API-Version: X.Y``; no header means 2.1,
``latest`` means the maximum. A malformed version is a 400, one outside
[2.1, 2.104] (nova 34) a 406, whose headers still echo the request.
"""
from __future__ import annotations

import re

from freezer_dr.simulator.state import ApiError

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 104)      # nova 34
Version = tuple[int, int]

_FORMAT = re.compile(r'^([1-9]\d*)\.([1-9]\d*|0)$')


class VersionNotAcceptable(ApiError):
    """406: a well-formed version outside the supported range."""

    def __init__(self, version: Version) -> None:
        super().__init__(406, f'Version {fmt(version)} is not supported by '
                              f'the API. Minimum is {fmt(MIN_VERSION)} and '
                              f'maximum is {fmt(MAX_VERSION)}.')
        self.version = version


def fmt(version: Version) -> str:
    return f'{version[0]}.{version[1]}'


def _parse(text: str) -> Version:
    text = text.strip()
    if text.lower() == 'latest':
        return MAX_VERSION
    match = _FORMAT.match(text)
    if match is None:
        raise ApiError(400, f'API Version String {text} is of invalid '
                            f'format. Must be of format MajorNum.MinorNum.')
    return int(match.group(1)), int(match.group(2))


def requested(new_header: str | None, legacy_header: str | None) -> Version:
    """The microversion a request asks for (raises 400 / 406)."""
    text = None
    if new_header:
        for item in new_header.split(','):
            parts = item.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == 'compute':
                text = parts[1]
    if text is None and legacy_header:
        text = legacy_header
    if text is None:
        return MIN_VERSION
    version = _parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionNotAcceptable(version)
    return version


def response_headers(version: Version) -> dict[str, str]:
    return {'OpenStack-API-Version': f'compute {fmt(version)}',
            'X-OpenStack-Nova-API-Version': fmt(version),
            'Vary': 'OpenStack-API-Version, X-OpenStack-Nova-API-Version'}
