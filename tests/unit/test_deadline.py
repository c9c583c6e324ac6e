"""``events.deadline_for``: the one place a drain's budget is decided, from the decision and the spec."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from ecsspot.events import (
    SPOT_MARGIN_SECONDS,
    SPOT_NOTICE_SECONDS,
    Decision,
    Envelope,
    HealthScheduledChange,
    LifecycleAction,
    RebalanceRecommendation,
    SpotInterruptionWarning,
    deadline_for,
    decide,
)
from ecsspot.spec import ClusterSpec, Drain, Instances, Network, Pool, StrategyItem

ROOT = Path(__file__).parents[2]
IID = "i-0123456789abcdef0"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def spec(deadline_seconds: int = 45, lifecycle_timeout_seconds: int = 900) -> ClusterSpec:
    """A spec whose two drain settings differ from each other and from their defaults."""
    return ClusterSpec(
        cluster="c",
        network=Network(subnets=("subnet-1",), security_groups=("sg-1",)),
        instances=Instances(ami="ami-1"),
        pools=(Pool(name="spot", max_size=2, instance_types=("m5.large",)),),
        strategy=(StrategyItem(pool="spot"),),
        drain=Drain(deadline_seconds=deadline_seconds, lifecycle_timeout_seconds=lifecycle_timeout_seconds),
    )


def at(when: datetime) -> float:
    return when.timestamp()


def hook(time: datetime | None) -> LifecycleAction:
    return LifecycleAction("TERMINATING", IID, "c-spot", "ecsspot-drain", "token-1", envelope=Envelope(time=time))


def test_a_lifecycle_hook_drains_for_the_spec_hook_timeout_however_old_the_event() -> None:
    for time in (T0, T0 - timedelta(hours=1), None):
        d = decide(hook(time), now=T0)
        assert deadline_for(d, spec(), at(T0)) == 900.0
        assert deadline_for(d, spec(lifecycle_timeout_seconds=120), at(T0)) == 120.0


def test_a_spot_warning_drains_until_the_notice_less_the_margin() -> None:
    d = decide(SpotInterruptionWarning(IID, "terminate", envelope=Envelope(time=T0)), now=T0)
    budget = SPOT_NOTICE_SECONDS - SPOT_MARGIN_SECONDS
    assert deadline_for(d, spec(), at(T0)) == budget
    assert deadline_for(d, spec(), at(T0) + 30) == budget - 30
    # A warning handled after its instance is gone leaves nothing to wait for, never a negative.
    assert deadline_for(d, spec(), at(T0) + 600) == 0.0


def test_a_spot_warning_without_a_time_counts_from_now() -> None:
    d = decide(SpotInterruptionWarning(IID, "terminate"), now=T0)
    assert deadline_for(d, spec(), at(T0)) == SPOT_NOTICE_SECONDS - SPOT_MARGIN_SECONDS


def test_a_health_notice_drains_until_the_maintenance_start_while_it_is_ahead() -> None:
    start = T0 + timedelta(minutes=30)
    event = HealthScheduledChange((IID,), "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", start, envelope=Envelope(time=T0))
    assert deadline_for(decide(event, now=T0), spec(), at(T0)) == 1800.0


def test_a_health_notice_past_its_start_drains_for_the_spec_hook_timeout() -> None:
    """What the hard-coded 600 s of ``decide`` was: now the spec's (600 s by default)."""
    event = HealthScheduledChange((IID,), "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", T0, envelope=Envelope(time=T0 - timedelta(days=1)))
    late = T0 + timedelta(minutes=5)
    d = decide(event, now=late)
    assert deadline_for(d, spec(), at(late)) == 900.0
    assert deadline_for(d, spec(lifecycle_timeout_seconds=300), at(late)) == 300.0
    default = attrs.evolve(spec(), drain=Drain())
    assert deadline_for(d, default, at(late)) == 600.0


def test_a_rebalance_recommendation_drains_for_the_spec_drain_deadline() -> None:
    d = decide(RebalanceRecommendation(IID, envelope=Envelope(time=T0)), now=T0)
    assert deadline_for(d, spec(), at(T0)) == 45.0
    assert deadline_for(d, spec(deadline_seconds=100), at(T0) + 1000) == 100.0


@pytest.mark.parametrize("kind", ["drain", "rebalance"])
def test_an_explicit_deadline_wins_over_the_spec(kind: str) -> None:
    d = Decision(kind, (IID,), "why", deadline=T0 + timedelta(seconds=70))  # type: ignore[arg-type]
    assert deadline_for(d, spec(), at(T0)) == 70.0


def test_deadline_for_needs_no_moto_or_boto3() -> None:
    code = (
        "import sys\n"
        "for m in ('moto', 'boto3', 'botocore', 'aiobotocore'): sys.modules[m] = None\n"
        "from datetime import datetime, timezone\n"
        "from ecsspot.events import RebalanceRecommendation, decide, deadline_for\n"
        "from ecsspot import load_spec\n"
        "from tests.conftest import example_spec_dict\n"
        "d = decide(RebalanceRecommendation('i-0123456789abcdef0'))\n"
        "assert deadline_for(d, load_spec(example_spec_dict()), 0.0) == 110.0\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert result.returncode == 0, result.stderr
