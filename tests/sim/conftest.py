"""Fixtures for the simulator's tests (builders are in ``tests/sim/stack.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecsspot.sim import Simulator


@pytest.fixture(name="sim")
def sim_fixture() -> Iterator[Simulator]:
    with Simulator(region="us-east-1", seed=7) as sim:
        yield sim


@pytest.fixture(name="server_sim")
def server_sim_fixture() -> Iterator[Simulator]:
    with Simulator(region="us-east-1", seed=7, server=True) as sim:
        yield sim
