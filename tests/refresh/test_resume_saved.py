"""A refresh an earlier release saved mid-way resumes with this one (production tables hold such
documents across upgrades): the literal document from tests/progress_documents.py, stored in place
of ours at the same step, is continued to the end."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from ecsspot import store
from ecsspot.refresh import PROGRESS, progress_of
from ecsspot.sim import Simulator
from ecsspot.spec import table_name
from tests import progress_documents as saved
from tests.refresh.stack import CLUSTER, Crash, assert_refreshed, build, draining_marks, manager


def _ids(before: Any, after: Any, found: dict[str, str]) -> dict[str, str]:
    """The saved document's AWS ids → this run's, by position in the two documents."""
    if isinstance(before, dict) and isinstance(after, dict):
        for k in before.keys() & after.keys():
            _ids(before[k], after[k], found)
    elif isinstance(before, list) and isinstance(after, list):
        for b, a in zip(before, after):
            _ids(b, a, found)
    elif isinstance(before, str) and isinstance(after, str) and before.startswith(("i-", "lt-", "ami-")):
        found[before] = after
    return found


def test_a_refresh_saved_by_the_dict_code_mid_termination_resumes(sim: Simulator) -> None:
    c = build(sim, spot=2, on_demand=2, tasks=4, rps=20)
    old = {p: c.members(p) for p in ("spot", "on-demand")}
    image = c.new_images[0]
    since = len(sim.history)

    def die_once_terminations_are_decided(progress: dict[str, Any]) -> None:
        if "terminating" in (progress["pools"][0]["batch"] or {}):
            raise Crash("the process died right after saving which instances it terminates")

    with pytest.raises(Crash):
        manager(sim).refresh(CLUSTER, ami=image, on_progress=die_once_terminations_are_decided)
    ours = c.manager.run(progress_of(CLUSTER))
    legacy = json.loads(saved.TERMINATING)
    ids = _ids(legacy, ours, {})
    assert {ids[i] for i in legacy["pools"][0]["old"]} == set(old["spot"]) and ids[legacy["image_id"]] == image
    text = saved.TERMINATING
    for then, now in ids.items():
        text = text.replace(f'"{then}"', f'"{now}"')
    # In its place, the document the dict-based refresh saved at this very step.
    c.manager.run(store.put_document(table_name(CLUSTER), *PROGRESS, json.loads(text), now=sim.now()))

    result = manager(sim).refresh(CLUSTER, ami=image, resume=True)

    assert result.status == "done", result.reason
    sim.advance(1)
    assert_refreshed(c, image, sizes={"spot": 2, "on-demand": 2})
    assert {p: c.sizes(p) for p in ("spot", "on-demand")} == {"spot": (0, 20, 2), "on-demand": (1, 4, 2)}
    assert sorted(result.replaced) == sorted(old["spot"] + old["on-demand"])
    assert draining_marks(sim, since) == Counter({i: 1 for p in old for i in old[p]})
    # Terminated with decrement once: no extra launch, nothing left over for a next batch.
    launched = [r.subject for r in sim.records("ec2.launched") if r.detail["group"] == f"{CLUSTER}-spot"]
    assert len(launched) == 2 + 2
    assert [p["surplus"] for p in result.progress["pools"]] == [0, 0]
    assert result.progress["id"] == legacy["id"]  # the saved refresh went on, not a new one
