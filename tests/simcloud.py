"""The simulator's CloudHandle for tests (the core lives in
:mod:`freezer_dr.simulator.handle`, shared with benchmarks and the demo)."""
from freezer_dr.simulator.handle import SimCloudHandle
from freezer_dr.simulator.handle import SimError

__all__ = ['SimCloudHandle', 'SimError']
