"""Fixtures for the rolling refresh tests: the simulator, and the CLI on its virtual clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from ecsspot.sim import Simulator
from tests.conftest import REGION


@pytest.fixture(name="sim")
def sim_fixture() -> Iterator[Simulator]:
    """The simulator with moto in-process (the fastest; aiobotocore needs ``server=True``)."""
    with Simulator(region=REGION, seed=11) as sim:
        yield sim


@pytest.fixture(name="run_cli")
def run_cli_fixture(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> Callable[..., Any]:
    """``ecsspot …`` in-process against the simulator, on its clock.

    The CLI builds its Manager with the system clock; a refresh waits minutes, and leases compare
    times, so the Manager here gets the simulator's clock instead (nothing else changes).
    """
    from ecsspot.manager import Manager
    from ecsspot_cli import main

    def manager(self: Any, spec_region: str | None = None) -> Manager:
        return Manager(region=REGION, endpoint_url=self.endpoint_url, clock=sim.clock)

    monkeypatch.setattr(main.Context, "manager", manager)

    def run(*args: str) -> Any:
        result = CliRunner().invoke(main.cli, list(args), catch_exceptions=False)
        result.json = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
        return result

    return run
