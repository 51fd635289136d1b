"""The leader's own state in the store, read failing closed.

``state`` holds what one leader hands the next: suspects with their
watched time, when a storm or blindness began, the unknown hosts, how
many hosts the monitor reported. The pause flag is the operators'.
"""
from __future__ import annotations

from freezer_dr.engine.alerts import episode_of
from freezer_dr.ha import store as ha_store

#: the key of the leader's state (suspects, unknown hosts, episodes)
KEY = 'state'


def read(store, alerts) -> tuple[dict, dict | None]:
    """The loop's own state and the pause flag, failing closed on data
    that cannot be read: the state starts afresh (every window
    restarts), an unreadable pause flag counts as paused."""
    try:
        state = store.get(KEY) or {}
    except ha_store.StoreValueError as error:
        alerts.submit('state_unreadable', episode_of(error),
                      f'the leader state is unreadable ({error}): '
                      f'starting it afresh')
        state = {}
    try:
        paused = store.paused()
    except ha_store.StoreValueError as error:
        alerts.submit('paused_unreadable', episode_of(error),
                      f'the pause flag is unreadable ({error}): holding as '
                      f'if paused; freezer-dr-manage resume clears it')
        paused = {'by': 'nobody', 'reason': f'pause flag unreadable: '
                                            f'{error}'}
    return state, paused
