"""The public operations as workflows: the Manager (sync) and AsyncManager run these."""

from __future__ import annotations

from ecsspot.aws.calls import Workflow
from ecsspot.errors import ConflictError
from ecsspot.lint import lint
from ecsspot.plan import ApplyResult, Plan, apply_plan, plan, read_settings, resolve_ami
from ecsspot.spec import ClusterSpec, validate
from ecsspot.state import Observed, observe


def plan_cluster(spec: ClusterSpec) -> Workflow[tuple[Plan, Observed]]:
    """Validate (before any call), resolve the AMI, observe, lint, and diff."""
    validate(spec)
    image_id = yield from resolve_ami(spec.instances.ami)
    observed = yield from observe(spec)
    settings = (yield from read_settings(spec.table_name)) if observed.table else None
    return plan(spec, observed, image_id, lint(spec, observed), settings), observed


def apply_cluster(spec: ClusterSpec, approved: Plan | None = None) -> Workflow[ApplyResult]:
    """Plan again and converge; with ``approved``, refuse if the plan no longer matches it."""
    fresh, observed = yield from plan_cluster(spec)
    if approved is not None and fresh.changes != approved.changes:
        raise ConflictError("the cluster changed since the plan was shown; review the new plan and apply again")
    return (yield from apply_plan(spec, observed, fresh))
