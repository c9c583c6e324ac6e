"""``refresh.next_batch``: which old instances are left and the batch that replaces the next of them (pure)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from ecsspot.progress import Batch, Original, PoolProgress, RefreshProgress
from ecsspot.refresh import NextBatch, next_batch

ROOT = Path(__file__).parents[2]
NEW, OLD = "ami-new", "ami-old"


def progress(batch_size: int | str = 1) -> RefreshProgress:
    return RefreshProgress(phase="rolling", image_id=NEW, batch_size=batch_size)


def pool(old: list[str] | None = None, surplus: int = 0, desired: int = 4) -> PoolProgress:
    return PoolProgress(pool="spot", asg="c-spot", original=Original(min=0, max=desired, desired=desired), state="rolling", old=old or [], surplus=surplus)


def group(*members: tuple[str, str], desired: int = 4, max_size: int = 4) -> dict[str, Any]:
    return {"DesiredCapacity": desired, "MaxSize": max_size, "Instances": [{"InstanceId": i, "LifecycleState": state} for i, state in members]}


def test_the_batch_takes_the_old_instances_known_longest_first_and_raises_capacity() -> None:
    g = group(("i-d", "InService"), ("i-c", "InService"), ("i-b", "InService"), ("i-a", "InService"))
    images = {"i-a": OLD, "i-b": NEW, "i-c": OLD, "i-d": OLD}
    step = next_batch(progress(), pool(old=["i-d"]), g, images, now=7.0)
    assert step == NextBatch(
        ("i-d", "i-a", "i-c"), 0, Batch(old=["i-d"], desired=5, max=5, step="scale_up", since=7.0, fresh_before=["i-b"])
    )


def test_a_percentage_of_the_pool_and_never_more_than_is_left() -> None:
    g = group(*((f"i-{n}", "InService") for n in "abcd"))
    images = dict.fromkeys(("i-a", "i-b", "i-c", "i-d"), OLD)
    half = next_batch(progress("50%"), pool(), g, images, now=0.0).batch
    assert half is not None and (half.old, half.desired) == (["i-a", "i-b"], 6)
    images.update({"i-a": NEW, "i-b": NEW, "i-c": NEW})
    last = next_batch(progress(3), pool(), g, images, now=0.0).batch
    assert last is not None and (last.old, last.desired, last.fresh_before) == (["i-d"], 5, ["i-a", "i-b", "i-c"])


def test_replacements_of_lost_old_instances_stand_in_for_new_capacity() -> None:
    g = group(("i-a", "InService"), ("i-b", "InService"))
    images = {"i-a": OLD, "i-b": OLD}
    step = next_batch(progress(2), pool(surplus=1), g, images, now=0.0)
    assert step.surplus == 0 and step.batch is not None and step.batch.desired == 5
    step = next_batch(progress(1), pool(surplus=3), g, images, now=0.0)
    assert step.surplus == 2 and step.batch is not None and step.batch.desired == 4


def test_an_instance_launched_from_the_old_version_meanwhile_is_old_too() -> None:
    g = group(("i-a", "InService"), ("i-z", "Pending"))
    images = {"i-a": NEW, "i-z": OLD}
    step = next_batch(progress(), pool(old=["i-gone"]), g, images, now=0.0)
    # The saved list keeps the one that is gone (it is history); the batch takes what is there.
    assert step.old == ("i-gone", "i-z") and step.batch is not None and step.batch.old == ["i-z"]


def test_instances_leaving_the_group_are_not_counted() -> None:
    g = group(("i-a", "Terminating"), ("i-b", "Standby"), ("i-c", "InService"))
    images = {"i-a": OLD, "i-b": OLD, "i-c": NEW}
    step = next_batch(progress(), pool(old=["i-a"], surplus=1), g, images, now=0.0)
    assert step == NextBatch(("i-a",), 1, None)


def test_no_group_means_the_pool_is_done() -> None:
    assert next_batch(progress(), pool(old=["i-a"]), None, {}, now=0.0) == NextBatch(("i-a",), 0, None)


def test_next_batch_needs_no_moto_or_boto3() -> None:
    code = (
        "import sys\n"
        "for m in ('moto', 'boto3', 'botocore', 'aiobotocore'): sys.modules[m] = None\n"
        "from ecsspot.progress import Original, PoolProgress, RefreshProgress\n"
        "from ecsspot.refresh import next_batch\n"
        "p = PoolProgress(pool='p', asg='g', original=Original(min=0, max=1, desired=1), state='rolling')\n"
        "g = {'DesiredCapacity': 1, 'MaxSize': 1, 'Instances': [{'InstanceId': 'i-a', 'LifecycleState': 'InService'}]}\n"
        "step = next_batch(RefreshProgress(phase='rolling', image_id='ami-new'), p, g, {'i-a': 'ami-old'}, now=0.0)\n"
        "assert step.batch.old == ['i-a'] and step.batch.desired == 2, step\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT))
    assert result.returncode == 0, result.stderr
