"""The public operations as workflows: the Manager (sync) and AsyncManager run these."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ecsspot import store
from ecsspot.aws.calls import NOW, Workflow
from ecsspot.drain import Action, DrainResult, drain
from ecsspot.aws.calls import call
from ecsspot.errors import ConflictError, Problem, SpecError
from ecsspot.interruption import load_cluster
from ecsspot.lint import lint
from ecsspot.plan import ApplyResult, Plan, apply_plan, plan, read_settings, resolve_ami
from ecsspot.spec import ClusterSpec, validate
from ecsspot.state import Observed, observe


def plan_cluster(spec: ClusterSpec) -> Workflow[tuple[Plan, Observed]]:
    """Validate (before any call), resolve the AMI, observe, lint, and diff."""
    validate(spec)
    image_id = yield from resolve_ami(spec.instances.ami)
    yield from check_network(spec)
    observed = yield from observe(spec)
    settings = (yield from read_settings(spec.table_name)) if observed.table else None
    return plan(spec, observed, image_id, lint(spec, observed), settings), observed


def check_network(spec: ClusterSpec) -> Workflow[None]:
    """Subnets and security groups must exist before anything is created (nothing half-applied)."""
    subnets, groups = yield (
        call("ec2", "describe_subnets", Filters=[{"Name": "subnet-id", "Values": list(spec.network.subnets)}]),
        call("ec2", "describe_security_groups", Filters=[{"Name": "group-id", "Values": list(spec.network.security_groups)}])
        if spec.network.security_groups
        else call("ec2", "describe_security_groups", GroupIds=[]),
    )
    problems = [
        Problem(f"network.subnets[{i}]", f"{s!r} does not exist in this account and region")
        for i, s in enumerate(spec.network.subnets)
        if s not in {x["SubnetId"] for x in subnets.get("Subnets", ())}
    ]
    if spec.network.security_groups:
        found = {g["GroupId"] for g in groups.get("SecurityGroups", ())}
        problems += [
            Problem(f"network.security_groups[{i}]", f"{g!r} does not exist in this account and region")
            for i, g in enumerate(spec.network.security_groups)
            if g not in found
        ]
    if problems:
        raise SpecError(problems)


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
    """``drain`` with the cluster's recorded settings (target groups, deadline) and per-instance leases."""
    spec, cached_groups = yield from load_cluster(cluster)
    ids = list(dict.fromkeys(instance_ids))
    seconds = float(deadline if deadline is not None else (spec.drain.deadline_seconds if spec else 110))
    if spec is None:
        return (yield from drain(cluster, ids, deadline=seconds, wait=wait))
    now = yield NOW
    leases = yield from store.acquire_leases(spec.table_name, [f"drain#{i}" for i in ids], owner, now=now, ttl=seconds + 60)
    leased = [i for i in ids if leases[f"drain#{i}"] is not None]
    skipped = [Action("drain", i, "skipped", "already being drained by another owner (lease held)") for i in ids if i not in leased]
    try:
        result = yield from drain(cluster, leased, deadline=seconds, wait=wait, target_groups=(*spec.target_groups, *cached_groups))
        if set(result.service_target_groups) - set(cached_groups):
            yield from store.remember_target_groups(spec.table_name, result.service_target_groups, now=now)
    finally:
        for iid in leased:
            yield from store.release_lease(spec.table_name, f"drain#{iid}", owner)
    return attrs.evolve(result, actions=(*result.actions, *skipped))
