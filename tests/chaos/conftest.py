"""Print the chaos fault x step coverage matrix at the end of the session."""
from __future__ import annotations

from tests.chaos import coverage


def pytest_terminal_summary(terminalreporter):
    matrix = coverage.SESSION.get('coverage')
    if matrix is None:
        return
    terminalreporter.write_sep('=', 'chaos: fault kind x recovery step hits')
    terminalreporter.write_line(matrix.table())
    missing = matrix.missing()
    early = matrix.missing(steps=('detecting',))
    terminalreporter.write_line(
        f'{len(matrix.runs)} runs, seed {coverage.SESSION["seed"]}; '
        f'reachable (kind, step) cells under {matrix.min_hits} hits: '
        f'{len(missing)} (and {len(early)} of detecting); JSON report: '
        f'{coverage.SESSION["report"]}')
