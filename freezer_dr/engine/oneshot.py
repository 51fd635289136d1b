"""One-shot mode: observe, recover every confirmed host, then exit.

This is how the original freezer-dr ran (from cron, or by an operator).
The caller holds the leader lease for the whole run; every safety gate of
the service applies unchanged.
"""
from __future__ import annotations

import time
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.engine import loop as engine_loop
from freezer_dr.engine.loop import LeaderLoop
from freezer_dr.model import Step

LOG = logging.getLogger(__name__)

#: holds that stop a one-shot run at once (nothing can happen until a
#: human or the cloud changes something)
BLOCKING_HOLDS = ('monitor unavailable', 'storm guard', 'paused',
                  'cannot observe', 'cycle failed')


def run_once(loop: LeaderLoop, store, poll_interval: float, timeout: float,
             say: t.Callable[[str], None] = print) -> int:
    """Exit code 0 when nothing was down or every recovery ended done."""
    started = time.monotonic()
    seen: dict[str, str] = {}             # recovery id -> host
    while True:
        sentence = loop.run_cycle()
        LOG.info('one-shot cycle: %s', sentence)
        if loop.hold_reason in BLOCKING_HOLDS:
            say(sentence)
            return 1
        seen.update({r.id: r.host for r in loop.last_live.values()})
        if not loop.busy():
            break
        live = list(loop.last_live.values())
        if live and all(r.step == Step.HELD for r in live) \
                and not loop.running():
            say(sentence)
            return 1
        if time.monotonic() - started > timeout:
            say(f'gave up after {timeout:.0f} s: {sentence}')
            return 1
        time.sleep(poll_interval)
    if not seen:
        say('No failed nodes')
        return 0
    code = 0
    for recovery_id, host in sorted(seen.items(), key=lambda kv: kv[1]):
        record = store.find(recovery_id)
        step = record.step if record else 'unknown'
        say(f'host {host}: recovery {recovery_id} {step}'
            + (f' ({record.reason})' if record and record.reason else ''))
        code = code or int(step != Step.DONE)
    return code


def run(conf, keepalive_interval: float, member_id: str,
        say: t.Callable[[str], None] = print) -> int:
    """``freezer-dr --once``: take the lease, recover, release, exit.

    Refuses (exit 1) while another replica leads: two actors are never
    allowed, whatever the mode. etcd unreachable is one line and exit 1.
    """
    try:
        return _run(conf, keepalive_interval, member_id, say)
    except exceptions.StoreUnavailable as error:
        say(f'etcd unavailable ({conf.coordination.backend_url}): {error}')
        return 1


def _run(conf, keepalive_interval: float, member_id: str,
         say: t.Callable[[str], None]) -> int:
    from freezer_dr.ha import leadership

    coord = conf.coordination
    parts = leadership.from_config(conf, member_id, keepalive_interval,
                                   info={'mode': 'one-shot'})
    lease, store = parts.lease, parts.store
    if not lease.try_acquire():
        leader = lease.read_leader() or {}
        say(f'cannot take the leader lease of cluster {coord.cluster}: '
            + (f'{leader.get("member_id")} leads' if leader
               else (lease.last_error or 'etcd unavailable')))
        return 1
    lease.start()
    loop = engine_loop.build(conf, lease, store)
    try:
        return run_once(loop, store, conf.engine.poll_interval,
                        ONESHOT_TIMEOUT, say)
    finally:
        loop.stop()
        # runners stop at their next step; release only once they have,
        # else let the lease run out (no one else acts before that)
        while loop.running() and lease.remaining() > 0:
            time.sleep(0.1)
        lease.stop()
        if not loop.running():
            lease.release()


#: a one-shot run gives up after this long (the recoveries it opened stay
#: checkpointed and are finished by the next run or by the service)
ONESHOT_TIMEOUT = 1800.0
