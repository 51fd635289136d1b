"""Load the configured plugins (stevedore) and hand them their settings."""
from __future__ import annotations

import dataclasses
import os
import typing as t

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr import plugins
from freezer_dr.conf import fencing as fencing_opts
from freezer_dr.evacuators.base import Evacuator
from freezer_dr.fencers import inventory as fence_inventory
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.monitors.base import Monitor
from freezer_dr.notifiers.base import Notifier


@dataclasses.dataclass
class Drivers:
    """The leader's hands and eyes."""
    monitor: Monitor
    evacuator: Evacuator
    inventory: t.Any              # freezer_dr.fencers.inventory.Inventory
    notifiers: dict[str, Notifier]

    def fencers(self, host: str) -> list:
        """Fencing levels of ``host`` in order ([] if not in inventory)."""
        if host not in self.inventory:
            return []
        return self.inventory.levels(host)


def plugin(namespace: str, name: str, option: str) -> type:
    """The class registered as ``name`` in ``namespace``; ConfigError
    naming ``option`` when there is none."""
    try:
        return plugins.load_class(namespace, name)
    except plugins.UnknownPlugin as error:
        raise exceptions.ConfigError(f'{option} = {name}: {error}') \
            from error


def load_inventory(conf, confirmation: t.Callable[[str], float | None],
                   strict: bool = True):
    """The fencing inventory named by ``[fencing] inventory``."""
    return fence_inventory.load_inventory(
        conf.fencing.inventory, manual_confirmation=confirmation,
        settings=FencingSettings.from_config(conf), strict=strict)


def validate(conf) -> None:
    """Start-up checks of what the engine will load; raise ConfigError.

    The inventory is checked when it exists or was configured explicitly
    (a replica with only ``[coordination]`` still starts and fails closed);
    plugin names always; the side-effect budget against the lease.
    """
    plugin(plugins.MONITORS, conf.monitor.driver, '[monitor] driver')
    plugin(plugins.EVACUATORS, conf.evacuation.driver,
           '[evacuation] driver')
    for name in conf.notifiers.drivers:
        plugin(plugins.NOTIFIERS, name, '[notifiers] drivers')
    path = conf.fencing.inventory
    fencing = os.path.exists(path) or path != fencing_opts.DEFAULT_INVENTORY
    if fencing:
        load_inventory(conf, lambda host: None)
    check_budgets(conf, fencing)


def check_budgets(conf, fencing: bool = True) -> None:
    """Every side effect's timeout must fit in the lease (S2).

    A side effect starts only while the lease outlives its timeout plus
    the safety margin; a timeout that cannot fit would stop the leader
    from ever acting. Checked for the parts this replica will use.
    """
    coord = conf.coordination
    budgets = []
    if fencing:
        budgets.append(('[fencing] call_timeout', conf.fencing.call_timeout))
    if conf.cloud.clouds_yaml or conf.cloud.cloud != 'envvars':
        budgets.append(('[cloud] api_timeout', conf.cloud.api_timeout))
    for name in ('email', 'webhook'):
        if name in conf.notifiers.drivers:
            budgets.append((f'[{name}] timeout', conf[name].timeout))
    for option, value in budgets:
        if value + coord.safety_margin >= coord.lease_ttl:
            raise exceptions.ConfigError(
                f'{option} ({value:g} s) + [coordination] safety_margin '
                f'({coord.safety_margin:g} s) must be below [coordination] '
                f'lease_ttl ({coord.lease_ttl:g} s): a side effect starts '
                f'only while the lease outlives it')


def load_notifiers(conf, connection=None) -> dict[str, Notifier]:
    """The configured notifiers (without a cloud connection they reach
    the admins only)."""
    return {name: plugin(plugins.NOTIFIERS, name,
                         '[notifiers] drivers').from_config(conf, connection)
            for name in conf.notifiers.drivers}


def load(conf, confirmation: t.Callable[[str], float | None]) -> Drivers:
    """Build every driver; raises ConfigError or CloudUnavailable.

    A leader loads leniently: one host's broken inventory entry keeps that
    host from being fenced (its recoveries hold, admins are alerted), not
    the whole cluster from acting.
    """
    inventory = load_inventory(conf, confirmation, strict=False)
    connection = cloud.connect(conf)
    monitor_cls = plugin(plugins.MONITORS, conf.monitor.driver,
                         '[monitor] driver')
    evacuator_cls = plugin(plugins.EVACUATORS, conf.evacuation.driver,
                           '[evacuation] driver')
    notifiers = load_notifiers(conf, connection)
    return Drivers(monitor=monitor_cls.from_config(conf, connection),
                   evacuator=evacuator_cls.from_config(conf, connection),
                   inventory=inventory, notifiers=notifiers)
