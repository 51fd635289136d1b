"""Which fault kind hit which recovery step, and what to aim at next.

A cell is (fault kind, step). The scheduler aims each run at a reachable
cell still under ``min_hits``, the least attempted first, so every kind
hits every step it can reach: the recovery steps first, then
``detecting`` (before a record exists); once all are covered it aims at
random. The step a run actually hit (read from etcd) is what is counted.
"""
from __future__ import annotations

import collections
import json
import random
import typing as t

from tests.chaos import faults

#: matrix columns: the recovery steps, plus where else a fault can land
#: the session's matrix, report path and seed (printed at the end)
SESSION: dict[str, t.Any] = {}

COLUMNS = (faults.DETECTING,) + faults.STEPS + ('held', 'ended',
                                                'unreached')


class Coverage:
    """Hit counts per (kind, step), attempts per (kind, target)."""

    def __init__(self, kinds: dict[str, faults.FaultKind],
                 min_hits: int = 3) -> None:
        self.kinds = kinds
        self.min_hits = min_hits
        self.hits: collections.Counter = collections.Counter()
        self.attempts: collections.Counter = collections.Counter()
        self.runs: list[dict[str, t.Any]] = []

    def cells(self) -> list[tuple[str, str]]:
        return [(name, step) for name, kind in self.kinds.items()
                for step in kind.steps]

    def next_cell(self, rng: random.Random) -> tuple[str, str]:
        """The (kind, target step) of the next run."""
        short = self.missing() or self.missing(steps=(faults.DETECTING,))
        if short:
            fewest = min(self.attempts[c] for c in short)
            return rng.choice([c for c in short
                               if self.attempts[c] == fewest])
        return rng.choice(self.cells())

    def record(self, kind: str, target: str, step: str,
               run: dict[str, t.Any]) -> None:
        column = step if step in COLUMNS else (
            'ended' if step in ('done', 'failed') else 'unreached')
        self.hits[(kind, column)] += 1
        self.attempts[(kind, target)] += 1
        self.runs.append(run)

    def missing(self, min_hits: int | None = None,
                steps: tuple[str, ...] = faults.STEPS
                ) -> list[tuple[str, str]]:
        """Reachable cells of ``steps`` (default: the recovery steps) hit
        fewer than ``min_hits`` times."""
        floor = self.min_hits if min_hits is None else min_hits
        return [c for c in self.cells()
                if c[1] in steps and self.hits[c] < floor]

    def table(self) -> str:
        """The matrix as text: hits, ``.`` for an unreachable cell."""
        width = max(len(k) for k in self.kinds) + 1
        heads = [c[:10] for c in COLUMNS]
        lines = [' ' * width + ' '.join(f'{h:>10}' for h in heads)]
        for name, kind in self.kinds.items():
            cells = []
            for column in COLUMNS:
                n = self.hits[(name, column)]
                reachable = column in kind.steps
                cells.append(f'{n if n or reachable else ".":>10}')
            lines.append(f'{name:<{width}}' + ' '.join(cells))
        return '\n'.join(lines)

    def as_json(self, seed: int, violations: list[str]) -> dict[str, t.Any]:
        return {
            'seed': seed, 'runs': len(self.runs), 'columns': list(COLUMNS),
            'matrix': {name: {c: self.hits[(name, c)] for c in COLUMNS}
                       for name in self.kinds},
            'reachable': {n: list(k.steps) for n, k in self.kinds.items()},
            'missing': [list(c) for c in self.missing()],
            'missing_detecting': [list(c) for c in self.missing(
                steps=(faults.DETECTING,))],
            'violations': violations, 'per_run': self.runs}

    def write(self, path: str, seed: int, violations: list[str]) -> None:
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(self.as_json(seed, violations), f, indent=1)
