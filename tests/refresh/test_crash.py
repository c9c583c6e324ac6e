"""Crash at every step: the refresh dies right after each mutating AWS call in turn, then resumes.

A crash is the process dying (:class:`~tests.refresh.stack.Crash`, raised by the driver after the
call took effect, before the workflow sees its answer): nothing more runs, the lease stays held
until it expires. A read-only call changes nothing, so crashing after one is the same as crashing
after the mutating call before it: the mutating calls are every distinct crash point.

The crash points are walked in rounds on one cluster: a baseline refresh counts the mutating
calls of an uninterrupted run; round ``k`` then refreshes to the other image and crashes after
its ``k``-th mutating call (every round has the same shape: 2 + 2 instances, batches of one).
Shards split the rounds so ``pytest -n`` can spread them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from ecsspot.errors import ConflictError
from ecsspot.refresh import LEASE_SECONDS, progress_of
from ecsspot.sim import Simulator, Timings
from tests.conftest import REGION
from tests.refresh.stack import (
    CLUSTER,
    Cluster,
    Crash,
    assert_refreshed,
    build,
    crashing_manager,
    draining_marks,
    lowest_active,
    manager,
    min_healthy,
)

SHARDS = 3
SIZES = {"spot": 2, "on-demand": 2}
#: Quicker boots than the defaults (30 s + 10 s): fewer polls per batch, the same steps.
FAST = Timings(instance_boot=5.0, agent_start=5.0)


@pytest.fixture(name="fast_sim")
def fast_sim_fixture() -> Iterator[Simulator]:
    with Simulator(region=REGION, seed=5, timings=FAST) as sim:
        yield sim


def _round(c: Cluster, image: str, crash_after: int | None) -> tuple[str, list[str]]:
    """One refresh to ``image`` that crashes after mutating call ``crash_after`` and is resumed
    by another process once the lease has expired; returns the crash point's call."""
    sim = c.sim
    old = {pool: c.members(pool) for pool in SIZES}
    since = len(sim.history)
    crashing, driver = crashing_manager(sim, crash_after)
    crashed_at = ""
    finished = False
    try:
        result = crashing.refresh(CLUSTER, ami=image)
    except Crash:
        crashed_at = driver.mutations[-1]
        saved = c.manager.run(progress_of(CLUSTER))
        # Crashed after saving "done" (or after giving the lease back): the resume finds nothing to do.
        finished = saved is not None and saved["phase"] == "done" and saved["image_id"] == image
        resumer = manager(sim)
        if crashed_at != "dynamodb:delete_item":
            with pytest.raises(ConflictError):
                resumer.refresh(CLUSTER, ami=image, resume=True)
        sim.advance(LEASE_SECONDS + 1)
        result = resumer.refresh(CLUSTER, ami=image, resume=True)
    else:
        assert crash_after is None, "the crash point was never reached"

    where = f"crash after mutating call {crash_after} ({crashed_at})"
    sim.advance(1)  # the agent records status changes made through the API on its next tick
    assert result.status == ("up_to_date" if finished else "done"), (where, result.reason)
    assert_refreshed(c, image, sizes=SIZES)
    assert {pool: c.sizes(pool)[:2] for pool in SIZES} == {"spot": (0, 20), "on-demand": (1, 4)}, where
    marks = draining_marks(sim, since)
    assert marks == Counter({i: 1 for pool in SIZES for i in old[pool]}), (where, marks)
    lowest = lowest_active(sim, since)
    assert lowest == {f"{CLUSTER}-{pool}": min_healthy(n) for pool, n in SIZES.items()}, (where, lowest)
    assert c.manager.run(progress_of(CLUSTER))["phase"] == "done", where
    return crashed_at, driver.mutations


@pytest.mark.parametrize("shard", range(SHARDS))
def test_crash_after_every_mutating_call_then_resume(fast_sim: Simulator, shard: int) -> None:
    c = build(fast_sim, spot=SIZES["spot"], on_demand=SIZES["on-demand"])
    images = [c.new_images[0], c.original_image]
    _, baseline = _round(c, images[0], None)
    points = len(baseline)
    # At least: lease, start, template, pointers, and per batch scale-up, DRAINING, terminate, hook.
    assert points >= 4 + 4 * 4, Counter(baseline)
    crashed = []
    for n, k in enumerate(range(1 + shard, points + 1, SHARDS), start=1):
        at, _ = _round(c, images[n % 2], k)  # back and forth between the two images
        assert at == baseline[k - 1], (k, at, baseline[k - 1])
        crashed.append(at)
    assert len(crashed) == len(range(1 + shard, points + 1, SHARDS))
    print(f"shard {shard}: {len(crashed)} of {points} crash points: {dict(Counter(crashed))}")
