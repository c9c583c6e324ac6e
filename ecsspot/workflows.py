"""The public operations as workflows: the Manager (sync) and AsyncManager run these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Call, Workflow, call
from ecsspot.drain import Action, DrainResult, drain
from ecsspot.errors import ConflictError, Problem, SpecError
from ecsspot.interruption import load_cluster
from ecsspot.lint import lint
from ecsspot.plan import ApplyResult, Plan, ami_lookup, apply_plan, image_from, plan, settings_from, settings_lookup
from ecsspot.spec import ClusterSpec, validate
from ecsspot.state import Observed, observe


def plan_cluster(spec: ClusterSpec) -> Workflow[tuple[Plan, Observed]]:
    """Validate (before any call), then read the AMI, the network and the recorded settings in one
    round, observe, lint, and diff."""
    validate(spec)
    ami = ami_lookup(spec.instances.ami)
    network = network_calls(spec)
    answers = list((yield (*((ami,) if ami else ()), *network, settings_lookup(spec.table_name))))
    image_id = image_from(spec.instances.ami, answers.pop(0) if ami else None)
    problems = network_problems(spec, answers[: len(network)])
    if problems:
        # Checked before anything is created: a bad subnet must not leave apply half done.
        raise SpecError(problems)
    settings = settings_from(answers[len(network)])
    observed = yield from observe(spec)
    return plan(spec, observed, image_id, lint(spec, observed), settings), observed


def network_calls(spec: ClusterSpec) -> tuple[Call, ...]:
    """Reads that show whether the spec's subnets and security groups exist."""
    calls = [call("ec2", "describe_subnets", Filters=[{"Name": "subnet-id", "Values": list(spec.network.subnets)}])]
    if spec.network.security_groups:
        calls.append(call("ec2", "describe_security_groups", Filters=[{"Name": "group-id", "Values": list(spec.network.security_groups)}]))
    return tuple(calls)


def network_problems(spec: ClusterSpec, answers: Sequence[Any]) -> list[Problem]:
    """Subnets and security groups the answers to :func:`network_calls` do not show."""
    subnets = {x["SubnetId"] for x in answers[0].get("Subnets", ())}
    problems = [
        Problem(f"network.subnets[{i}]", f"{s!r} does not exist in this account and region")
        for i, s in enumerate(spec.network.subnets)
        if s not in subnets
    ]
    if spec.network.security_groups:
        groups = {g["GroupId"] for g in answers[1].get("SecurityGroups", ())}
        problems += [
            Problem(f"network.security_groups[{i}]", f"{g!r} does not exist in this account and region")
            for i, g in enumerate(spec.network.security_groups)
            if g not in groups
        ]
    return problems


def apply_cluster(spec: ClusterSpec, approved: Plan | None = None) -> Workflow[ApplyResult]:
    """Plan again and converge; with ``approved``, refuse if the plan no longer matches it."""
    fresh, observed = yield from plan_cluster(spec)
    if approved is not None and fresh.changes != approved.changes:
        raise ConflictError("the cluster changed since the plan was shown; review the new plan and apply again")
    return (yield from apply_plan(spec, observed, fresh))


def owner_id() -> str:
    """Who holds a lease: host, process and a random suffix (unique per Manager)."""
    import os
    import socket
    import uuid

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def drain_instances(cluster: str, instance_ids: Sequence[str], *, deadline: float | None, wait: bool, owner: str) -> Workflow[DrainResult]:
    """``drain`` with the cluster's recorded settings (target groups, deadline) and per-instance leases.

    The leases are given back on every exit path, Ctrl-C included (the driver serves the
    ``finally`` block's calls before the interruption propagates), all in one round.
    """
    spec, cached_groups = yield from load_cluster(cluster)
    ids = list(dict.fromkeys(instance_ids))
    seconds = float(deadline if deadline is not None else (spec.drain.deadline_seconds if spec else 110))
    if spec is None:
        return (yield from drain(cluster, ids, deadline=seconds, wait=wait))
    now = yield NOW
    leases = yield from store.acquire_leases(spec.table_name, [f"drain#{i}" for i in ids], owner, now=now, ttl=seconds + 60)
    leased = [i for i in ids if leases[f"drain#{i}"] is not None]
    skipped = [Action("drain", i, "skipped", "already being drained by another owner (lease held)") for i in ids if i not in leased]
    names = [f"drain#{iid}" for iid in leased]
    try:
        result = yield from drain(cluster, leased, deadline=seconds, wait=wait, target_groups=(*spec.target_groups, *cached_groups))
        if set(result.service_target_groups) - set(cached_groups):
            yield from store.remember_target_groups(spec.table_name, result.service_target_groups, now=now)
    except GeneratorExit:
        raise  # closed without being driven on (the process is going away): the leases expire
    except BaseException:
        yield from store.let_go(spec.table_name, (), names, owner)
        raise
    yield from store.let_go(spec.table_name, (), names, owner)
    return attrs.evolve(result, actions=(*result.actions, *skipped))
