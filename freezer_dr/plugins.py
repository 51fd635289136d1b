"""The one place plugins are loaded: stevedore, four namespaces.

Monitors, fencers, evacuators and notifiers are entry points in
``freezer_dr.<family>``; :func:`load_class` finds the class registered
under a name, or raises :class:`UnknownPlugin` saying which were there.
"""
from __future__ import annotations

from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exc
from stevedore import extension as stevedore_extension

from freezer_dr import exceptions

MONITORS = 'freezer_dr.monitors'
FENCERS = 'freezer_dr.fencers'
EVACUATORS = 'freezer_dr.evacuators'
NOTIFIERS = 'freezer_dr.notifiers'


class UnknownPlugin(exceptions.ConfigError):
    """No plugin of that name in the namespace (or it failed to load)."""


def names(namespace: str) -> list[str]:
    """The plugin names registered in ``namespace``."""
    return sorted(stevedore_extension.ExtensionManager(
        namespace).entry_points_names())


def load_class(namespace: str, name: str) -> type:
    """The class registered as ``name`` in ``namespace``."""
    try:
        return stevedore_driver.DriverManager(namespace, name).driver
    except stevedore_exc.NoMatches:
        known = ', '.join(names(namespace)) or 'none'
        raise UnknownPlugin(f'no plugin {name!r} (known: {known})') \
            from None
    except Exception as error:      # the plugin's own import failed
        raise UnknownPlugin(f'plugin {name!r} cannot be loaded: '
                            f'{type(error).__name__}: {error}') from error
