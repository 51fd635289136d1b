"""The openstacksdk Connection freezer-dr acts through, and its errors.

``connect(conf)`` builds a Connection from the ``[cloud]`` group
(clouds.yaml path and cloud name, region, API timeout) with an explicit
compute microversion, so every compute request carries the same one.
Every request it sends ends, answer read in full, within the API timeout
(:func:`bound_requests`); a driver bounds a whole call, re-authentication
included, with :func:`freezer_dr.deadline_http.bounded`.
``describe_error`` / ``http_status`` let drivers translate openstacksdk and
keystoneauth errors into freezer-dr's own exceptions at their edge.
"""
from __future__ import annotations

import datetime
import os
import typing as t

import keystoneauth1.exceptions as ks_exc
import keystoneauth1.session as ks_session
import openstack.config
import openstack.connection
import openstack.exceptions as sdk_exc
import tenacity
from oslo_config import cfg
from oslo_log import log as logging

from freezer_dr import deadline_http
from freezer_dr import exceptions
from freezer_dr.deadline import DeadlineExceeded

LOG = logging.getLogger(__name__)
T = t.TypeVar('T')

#: Every error an openstacksdk call can raise for a cloud-side reason.
API_ERRORS: tuple[type[BaseException], ...] = (
    sdk_exc.SDKException, ks_exc.ClientException, DeadlineExceeded)


class _CloudAdapter(deadline_http.BoundedAdapter,
                    ks_session.TCPKeepAliveAdapter):
    """keystoneauth's adapter (TCP keep-alive, TLS settings), bounded."""


def bound_requests(connection: openstack.connection.Connection,
                   default_budget: float | None = None) -> None:
    """Make every request of ``connection`` end within a deadline.

    A request outside :func:`freezer_dr.deadline_http.bounded` gets
    ``default_budget`` seconds (default: the session timeout) for its
    whole exchange, however slowly the server answers. A connection
    bound already keeps its budget.
    """
    requests_session = connection.session.session
    budget = default_budget or connection.session.timeout
    for prefix in ('https://', 'http://'):
        current = requests_session.get_adapter(prefix)
        if isinstance(current, _CloudAdapter):
            continue
        requests_session.mount(prefix, _CloudAdapter(
            budget, tls_ciphers=getattr(current, 'tls_ciphers', None),
            tls_min_version=getattr(current, 'tls_min_version', None)))


def connect(conf: cfg.ConfigOpts, *, api_timeout: float | None = None,
            microversion: str | None = None,
            ) -> openstack.connection.Connection:
    """An openstacksdk Connection built from ``conf``.

    ``api_timeout`` defaults to ``[cloud] api_timeout`` and
    ``microversion`` (compute) to ``[cloud] compute_microversion``. Raises
    :class:`ConfigError` naming the option at fault when clouds.yaml, the
    cloud or the region cannot be found.
    """
    group = conf.cloud
    timeout = api_timeout if api_timeout is not None else group.api_timeout
    version = microversion or group.compute_microversion
    return connect_to(cloud=group.cloud, clouds_yaml=group.clouds_yaml,
                      region_name=group.region_name, api_timeout=timeout,
                      compute_microversion=version)


def connect_to(cloud: str, clouds_yaml: str | None, region_name: str | None,
               api_timeout: float, compute_microversion: str,
               ) -> openstack.connection.Connection:
    """A Connection from explicit settings (see :func:`connect`)."""
    if clouds_yaml and not os.path.isfile(clouds_yaml):
        raise exceptions.ConfigError(
            f'[cloud] clouds_yaml: {clouds_yaml} is not a readable file')
    loader = openstack.config.OpenStackConfig(
        config_files=[clouds_yaml] if clouds_yaml else None,
        app_name='freezer-dr')
    try:
        region = loader.get_one(
            cloud=cloud, region_name=region_name, api_timeout=api_timeout,
            compute_api_version=compute_microversion)
    except sdk_exc.ConfigException as exc:
        raise exceptions.ConfigError(_config_message(
            str(exc), cloud, clouds_yaml, region_name)) from None
    except (ks_exc.ClientException, TypeError) as exc:
        # MissingRequiredOptions: the entry lacks auth settings; TypeError:
        # it has settings its auth_type does not take.
        raise exceptions.ConfigError(
            f'[cloud] cloud: entry {cloud!r} is unusable: '
            f'{describe_error(exc)}') from None
    LOG.debug('Cloud %s (region %s) with compute microversion %s, API '
              'timeout %.1f s', cloud, region_name or 'default',
              compute_microversion, api_timeout)
    connection = openstack.connection.Connection(config=region)
    bound_requests(connection, api_timeout)
    return connection


def _config_message(detail: str, cloud: str, clouds_yaml: str | None,
                    region_name: str | None) -> str:
    where = clouds_yaml or 'the clouds.yaml search path'
    if region_name and 'region' in detail.lower():
        return (f'[cloud] region_name: {region_name!r} is not a region of '
                f'cloud {cloud!r} in {where}')
    if 'not found' in detail.lower() or 'cloud' in detail.lower():
        return f'[cloud] cloud: {cloud!r} is not defined in {where}'
    return f'[cloud] cloud {cloud!r} in {where}: {detail}'


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an API error, None for transport failures."""
    status = getattr(exc, 'status_code', None)   # openstacksdk
    if status is None:
        status = getattr(exc, 'http_status', None)   # keystoneauth
    return status if isinstance(status, int) else None


def describe_error(exc: BaseException) -> str:
    """A short, secret-free sentence for an API error.

    Prefers the service's own message (Nova's ``badRequest.message``) over
    openstacksdk's long rendering with the URL.
    """
    if isinstance(exc, DeadlineExceeded):
        return str(exc)
    status = http_status(exc)
    details = getattr(exc, 'details', None)
    if status is not None:
        text = details or getattr(exc, 'message', None) or type(exc).__name__
        return f'HTTP {status}: {text}'
    if isinstance(exc, ks_exc.ConnectTimeout):
        return 'connection timed out'
    if isinstance(exc, ks_exc.ConnectFailure):
        return 'connection failed (refused or unreachable)'
    if isinstance(exc, ks_exc.ConnectionError):
        return f'connection error ({type(exc).__name__})'
    if isinstance(exc, ks_exc.EndpointNotFound):
        return 'endpoint not found in the service catalog'
    if isinstance(exc, ks_exc.DiscoveryFailure):
        return f'API version discovery failed: {exc}'
    return f'{type(exc).__name__}: {exc}'


def is_refusal(exc: BaseException) -> bool:
    """True when the cloud answered and refused the request for good.

    4xx other than 401 (token), 408 (timeout) and 429 (rate limit) means
    the request itself is wrong for the cloud's current state; everything
    else (5xx, transport errors, expired tokens) may succeed on retry.
    """
    status = http_status(exc)
    return (status is not None and 400 <= status < 500
            and status not in (401, 408, 429))


#: pauses before a request that failed with a server error is sent again
RETRY_DELAYS = (0.5, 1.0)


def retry_server_errors(call: t.Callable[[], T],
                        delays: t.Sequence[float] = RETRY_DELAYS) -> T:
    """``call()`` (a request safe to repeat: a read, or a write that sets
    a state), sent again after each pause in ``delays`` while the cloud
    answers with a server error (5xx).

    A loaded Nova API fails a request now and then; asking again within
    a second beats setting back the step it serves by the runner's
    seconds-long backoff. Timeouts and transport failures are not
    repeated here: they point at an outage, which the caller's backoff
    rides out without holding a thread.
    """
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_server_error),
        stop=tenacity.stop_after_attempt(len(delays) + 1),
        wait=tenacity.wait_chain(*map(tenacity.wait_fixed, delays)),
        before_sleep=_log_resend, reraise=True)(call)


def _is_server_error(exc: BaseException) -> bool:
    status = http_status(exc) if isinstance(exc, API_ERRORS) else None
    return status is not None and status >= 500


def _log_resend(state: tenacity.RetryCallState) -> None:
    LOG.info('Request failed (%s); again in %.1f s',
             describe_error(state.outcome.exception()),
             state.next_action.sleep)


def parse_time(value: str | None) -> datetime.datetime | None:
    """A Nova timestamp (ISO 8601, UTC when naive) as an aware datetime."""
    if not value:
        return None
    try:
        stamp = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp
