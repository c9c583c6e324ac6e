"""The refresh progress converter (ecsspot.progress), without AWS: documents saved by earlier
releases load, what we write keeps their keys, unknown keys are ignored, bad values are refused
with the field named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecsspot.errors import InputError
from ecsspot.progress import Batch, DrainRecord, Original, PoolProgress, RefreshProgress, Removal, dump, load
from ecsspot.refresh import summary
from tests import progress_documents as saved


def _keys_kept(before: Any, after: Any, path: str = "") -> list[str]:
    """Where ``after`` lost or changed a value ``before`` had (added keys are fine)."""
    if isinstance(before, dict):
        if not isinstance(after, dict):
            return [path]
        return [p for k, v in before.items() for p in (_keys_kept(v, after[k], f"{path}.{k}") if k in after else [f"{path}.{k}"])]
    if isinstance(before, list):
        if not isinstance(after, list) or len(after) != len(before):
            return [path]
        return [p for i, (b, a) in enumerate(zip(before, after)) for p in _keys_kept(b, a, f"{path}[{i}]")]
    return [] if before == after and type(before) is type(after) else [path]


@pytest.mark.parametrize("name", sorted(saved.ALL))
def test_a_document_saved_before_typed_progress_loads_and_is_written_back_with_its_keys(name: str) -> None:
    document = json.loads(saved.ALL[name])
    progress = load(document)
    again = dump(progress)
    assert _keys_kept(document, again) == []
    assert load(json.loads(json.dumps(again))) == progress


def test_a_saved_batch_mid_termination_reads_into_its_typed_steps() -> None:
    progress = load(json.loads(saved.TERMINATING))
    assert (progress.phase, progress.image_id, progress.template_id, progress.new_version) == ("rolling", "ami-061ecaadf85691afe", "lt-b3a62f301f4653655", 2)
    spot, on_demand = progress.pools
    assert (spot.pool, spot.state, spot.original) == ("spot", "rolling", Original(min=0, max=20, desired=2, running=2))
    assert on_demand.batch is None and on_demand.state == "pending"
    batch = spot.batch
    assert batch is not None
    assert (batch.step, batch.old, batch.new, batch.desired, batch.max) == ("terminate", ["i-c3a98faec23434556"], ["i-df1788622857c93ca"], 3, 20)
    assert batch.drain == [DrainRecord("i-c3a98faec23434556", "drained", "drained in 60 s")]
    # The keys the dict code built (``key + "_desired_before"``) are one typed removal step.
    assert batch.removal == Removal(drain_seconds=60.0, terminating=["i-c3a98faec23434556"], desired_before=3)
    assert batch.rollback == Removal()


def test_a_saved_rollback_reads_its_own_removal_step() -> None:
    progress = load(json.loads(saved.ROLLING_BACK))
    batch = progress.pools[0].batch
    assert progress.phase == "rolling_back" and batch is not None
    assert batch.removal == Removal(drain_seconds=600.0)
    assert batch.rollback == Removal(drain_seconds=60.0, terminating=["i-df1788622857c93ca"], desired_before=3)
    assert progress.pools[0].failed_new == ["i-df1788622857c93ca"]


def test_removal_keys_are_written_only_once_a_step_sets_them() -> None:
    """Older releases resume our documents too (a Lambda not yet upgraded): they decide which
    instances to terminate when ``terminating`` is absent, so it must not appear as null."""
    batch = Batch(old=["i-1"], desired=3, max=20, step="drain", since=5.0)
    stored = dump(RefreshProgress(phase="rolling", image_id="ami-1", pools=[PoolProgress("spot", "g", Original(0, 20, 2), "rolling", batch=batch)]))
    assert not {k for k in stored["pools"][0]["batch"] if "terminating" in k or "drain_seconds" in k}
    batch.rollback = Removal(drain_seconds=1.5, terminating=[], desired_before=2)
    stored = dump(RefreshProgress(phase="rolling_back", image_id="ami-1", pools=[PoolProgress("spot", "g", Original(0, 20, 2), "rolling", batch=batch)]))
    written = stored["pools"][0]["batch"]
    assert (written["rollback_drain_seconds"], written["rollback_terminating"], written["rollback_terminating_desired_before"]) == (1.5, [], 2)
    assert "terminating" not in written and "removal" not in written and "rollback" not in written


def test_round_trip_of_every_field() -> None:
    progress = RefreshProgress(
        phase="rolling",
        image_id="ami-2",
        id="abc",
        cluster="demo-api",
        batch_size="25%",
        min_healthy_percent=75,
        previous_version=3,
        new_version=4,
        template_id="lt-1",
        started_at=10.0,
        updated_at=12.5,
        reason="why",
        kept_draining=["i-9"],
        pools=[
            PoolProgress(
                pool="spot",
                asg="demo-api-spot",
                original=Original(min=0, max=20, desired=4, running=3),
                state="rolling",
                old=["i-1", "i-2"],
                replaced=["i-0"],
                surplus=1,
                previous_version=2,
                failed_new=["i-7"],
                batch=Batch(
                    old=["i-1"], desired=5, max=20, step="terminate", since=11.0, fresh_before=["i-5"], new=["i-6"],
                    drain=[DrainRecord("i-1", "drained", "ok")],
                    removal=Removal(drain_seconds=30.0, terminating=["i-1"], desired_before=5),
                    rollback=Removal(drain_seconds=2.0),
                ),
            ),
            PoolProgress(pool="on-demand", asg="demo-api-on-demand", original=Original(1, 4, 1), state="done"),
        ],
    )
    assert load(json.loads(json.dumps(dump(progress)))) == progress


def test_unknown_keys_are_ignored_at_every_level() -> None:
    document = json.loads(saved.TERMINATING)
    document["added_by_a_later_release"] = {"x": 1}
    document["pools"][0]["hint"] = "x"
    document["pools"][0]["original"]["spare"] = 2
    document["pools"][0]["batch"]["note"] = [1, 2]
    document["pools"][0]["batch"]["drain"][0]["took"] = 60
    assert load(document) == load(json.loads(saved.TERMINATING))


def test_an_older_document_gets_defaults_for_what_it_lacks() -> None:
    """Before ``running``, ``surplus``, ``fresh_before`` and per-pool ``previous_version`` existed
    the code read them with ``.get`` fallbacks; the defaults are those fallbacks."""
    document = json.loads(saved.DRAINING)
    spot = document["pools"][0]
    for key in ("surplus", "previous_version"):
        del spot[key]
    del spot["original"]["running"]
    del spot["batch"]["fresh_before"]
    del spot["batch"]["new"]
    progress = load(document)
    pool = progress.pools[0]
    assert pool.surplus == 0 and pool.previous_version is None and pool.failed_new == []
    assert pool.original.running == pool.original.desired == 2
    assert pool.batch is not None and pool.batch.fresh_before == [] and pool.batch.new == [] and pool.batch.removal == Removal()
    assert progress.kept_draining == []
    # The smallest document a status reader may meet: defaults are the spec's.
    minimal = load({"phase": "rolling", "image_id": "ami-1"})
    assert (minimal.batch_size, minimal.min_healthy_percent, minimal.pools) == (1, 90, [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(phase="paused"), "phase: must be one of template, rolling, rolling_back, done, rolled_back, got 'paused'"),
        (lambda d: d["pools"][1].update(state="busy"), "pools[1].state: must be one of pending, rolling, done, rolled_back, got 'busy'"),
        (lambda d: d["pools"][0]["batch"].update(step="later"), "pools[0].batch.step: must be one of scale_up, wait_new, drain, terminate, got 'later'"),
        (lambda d: d.pop("image_id"), "image_id: required field missing"),
        # cattrs alone would take a string for the list of its characters, and "3" for 3.
        (lambda d: d["pools"][0]["batch"].update(terminating="i-c3a98faec23434556"), "pools[0].batch.terminating: expected a list of strings, got str"),
        (lambda d: d["pools"][0]["batch"].update(terminating_desired_before="3"), "pools[0].batch.terminating_desired_before: expected an integer, got str"),
        (lambda d: d["pools"][0]["original"].update(min=True), "pools[0].original.min: expected an integer, got bool"),
        (lambda d: d.update(image_id=7), "image_id: expected a string, got int"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(change: Any, message: str) -> None:
    document = json.loads(saved.TERMINATING)
    change(document)
    with pytest.raises(InputError) as info:
        load(document, where="the saved refresh progress in table ecsspot-demo-api")
    assert str(info.value) == f"the saved refresh progress in table ecsspot-demo-api is not readable: {message}"
    assert info.value.exit_code == 3


def test_every_bad_field_is_named_at_once() -> None:
    document = json.loads(saved.TERMINATING)
    document["phase"] = "paused"
    document["pools"][1]["state"] = "busy"
    with pytest.raises(InputError) as info:
        load(document)
    assert "phase: must be one of" in str(info.value) and "; pools[1].state: must be one of" in str(info.value)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(InputError, match="refresh progress is not readable: expected an object, got list"):
        load([])  # type: ignore[arg-type]


def test_summary_reads_a_saved_document_and_the_typed_progress_alike() -> None:
    document = json.loads(saved.TERMINATING)
    shown = summary(document)
    assert shown == summary(load(document))
    assert shown is not None
    assert shown["pools"] == [
        {"pool": "spot", "state": "rolling", "replaced": 0, "old": 2, "step": "terminate", "batch": ["i-c3a98faec23434556"]},
        {"pool": "on-demand", "state": "pending", "replaced": 0, "old": 2, "step": None, "batch": []},
    ]
    assert (shown["phase"], shown["new_version"], shown["updated_at"]) == ("rolling", 2, 1700000180.0)
    assert summary(json.loads(saved.ROLLED_BACK)) is None and summary(None) is None
