"""Fixtures of the end-to-end tests that drive the CLI in-process against the simulator."""

from __future__ import annotations

import pytest


@pytest.fixture(name="simulated_account")
def fixture_simulated_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's environment for the in-process simulator: no profile or endpoint of the
    machine's, and the simulator's Region (use with ``pytestmark = pytest.mark.usefixtures``)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
