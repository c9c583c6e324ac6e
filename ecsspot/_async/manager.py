"""The public API, asynchronous face: ``AsyncManager`` (aiobotocore) over ecsspot's workflows.

Edit ecsspot/_async/manager.py only: scripts/unasync.py generates ecsspot/_sync/manager.py from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from botocore.config import Config

from ecsspot import apply, drain, store
from ecsspot import status as _status
from ecsspot import teardown as _teardown
from ecsspot.apply import ApplyResult
from ecsspot.aws.calls import Report, Workflow
from ecsspot.aws.clients import ClientOptions, default_config
from ecsspot.clock import Clock
from ecsspot.drain import DrainResult
from ecsspot.interruption import HandleResult, handle_event
from ecsspot.interruption import dry_run as _dry_run
from ecsspot.plan import Plan
from ecsspot.refresh import RefreshResult
from ecsspot.refresh import refresh as _refresh
from ecsspot.settings import aws_region
from ecsspot.spec import ClusterSpec
from ecsspot.status import Status
from ecsspot.teardown import TeardownResult

T = TypeVar("T")


def _options(
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    config: Config | None,
    event_handlers: Sequence[tuple[str, Callable[..., Any]]],
) -> ClientOptions:
    return ClientOptions(
        # botocore reads only AWS_DEFAULT_REGION; AWS_REGION is what Lambda and the other SDKs set.
        region=region or aws_region(os.environ),
        profile=profile,
        endpoint_url=endpoint_url,
        config=config or default_config(),
        event_handlers=tuple(event_handlers),
    )


class AsyncManager:
    """Asynchronous ecsspot API (aiobotocore); ``async with`` closes its driver at the end.

    ``region``/``profile``/``endpoint_url`` default to botocore's usual chain; ``session`` reuses
    a session of aiobotocore; ``clock`` injects time (tests, the simulator); ``event_handlers``
    registers botocore event hooks on every client (metrics, call counting); ``on_progress``
    receives each :class:`~ecsspot.aws.calls.Report` of the long waits (what a drain, an apply, a
    refresh is waiting for) to show it; the library itself never prints.
    """

    def __init__(
        self,
        region: str | None = None,
        *,
        profile: str | None = None,
        endpoint_url: str | None = None,
        session: Any = None,
        clock: Clock | None = None,
        config: Config | None = None,
        event_handlers: Sequence[tuple[str, Callable[..., Any]]] = (),
        on_progress: Callable[[Report], None] | None = None,
    ) -> None:
        from ecsspot.aws.aio import AsyncDriver

        options = _options(region, profile, endpoint_url, config, event_handlers)
        self.driver = AsyncDriver(options, session=session, clock=clock, on_report=on_progress)
        self.owner = store.owner_id()

    async def __aenter__(self) -> AsyncManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.driver.aclose()

    async def run(self, workflow: Workflow[T]) -> T:
        """Run any ecsspot workflow with this manager's clients and clock."""
        return await self.driver.run(workflow)

    async def plan(self, spec: ClusterSpec) -> Plan:
        """What ``apply`` would change, with lint warnings; makes no change."""
        plan, _observed = await self.run(apply.plan_cluster(spec))
        return plan

    async def apply(self, spec: ClusterSpec, plan: Plan | None = None) -> ApplyResult:
        """Converge AWS to ``spec``; with ``plan``, only if the plan is still what was approved."""
        return await self.run(apply.apply_cluster(spec, plan))

    async def status(self, cluster: str) -> Status:
        """Instances of the cluster's ecsspot pools with their ECS state; makes no change."""
        return await self.run(_status.status(cluster))

    async def teardown(self, cluster: str, *, deadline: float = 900) -> TeardownResult:
        """Drain and delete what ecsspot created for ``cluster``; past ``deadline`` seconds, an error naming what is left."""
        return await self.run(_teardown.teardown(cluster, deadline_seconds=deadline))

    async def drain(self, cluster: str, instance_ids: Sequence[str], *, deadline: float | None = None, wait: bool = True) -> DrainResult:
        """Verified drain of EC2 instances: DRAINING and ALB targets deregistered, then (``wait``) verified."""
        return await self.run(drain.drain_instances(cluster, instance_ids, deadline=deadline, wait=wait, owner=self.owner))

    async def refresh(
        self,
        cluster: str,
        *,
        ami: str | None = None,
        batch_size: int | str | None = None,
        min_healthy_percent: int | None = None,
        resume: bool = False,
        on_progress: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> RefreshResult:
        """Rolling AMI refresh (``ami``: an id or ``ssm:/param``; default: the spec's refresh parameter)."""
        return await self.run(
            _refresh(cluster, owner=self.owner, ami=ami, batch_size=batch_size, min_healthy_percent=min_healthy_percent, resume=resume, on_progress=on_progress)
        )

    async def handle_event(
        self, payload: Mapping[str, Any], *, dry_run: bool = False, default_cluster: str | None = None, remaining_seconds: float | None = None
    ) -> HandleResult:
        """Handle an EventBridge event or an SQS/SNS batch (what the interruption Lambda does)."""
        if dry_run:
            return _dry_run(payload)
        return await self.run(handle_event(payload, owner=self.owner, default_cluster=default_cluster, remaining_seconds=remaining_seconds))
