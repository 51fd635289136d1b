"""Cells of the real-Nova box: which host is where, and a cell Nova cannot
reach (Nova's ``DownCellFixture``, made to scatter plain functions).

Import only in the box's process, after ``tests.novabox.box`` has set up
Nova's environment (it imports this module itself).
"""

import fixtures
from nova import context as nova_context
from nova.tests import fixtures as nova_fixtures


def cell_of(index: int, cells: int) -> str:
    """The cell of the host at ``index`` (0-based): round-robin, as the
    simulator's ``--cells`` spreads them."""
    return f'cell{index % cells + 1}'


class _Scattered:
    """A plain function wearing a bound method's ``__func__``.

    ``DownCellFixture``'s scatter-gather stub reads ``fn.__func__``, which
    only bound methods have; Nova also scatters plain functions (the
    scheduler's minimum-service-version check), and the stub's
    AttributeError would stop every build and evacuation while a cell is
    down, which is not what an unreachable cell does to Nova.
    """

    def __init__(self, fn):
        self.__func__ = fn

    def __call__(self, *args, **kwargs):
        return self.__func__(*args, **kwargs)


class DownCells(fixtures.Fixture):
    """Nova's ``DownCellFixture`` for ``cells``, with plain functions
    scattered as Nova does."""

    def __init__(self, cell_mappings):
        super().__init__()
        self.cell_mappings = cell_mappings

    def _setUp(self):
        self.useFixture(nova_fixtures.DownCellFixture(self.cell_mappings))
        stub = nova_context.scatter_gather_cells

        def scatter_gather_cells(ctxt, cell_mappings, timeout, fn, *args,
                                 **kwargs):
            if not hasattr(fn, '__func__'):
                fn = _Scattered(fn)
            return stub(ctxt, cell_mappings, timeout, fn, *args, **kwargs)

        self.useFixture(fixtures.MonkeyPatch(
            'nova.context.scatter_gather_cells', scatter_gather_cells))
