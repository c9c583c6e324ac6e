"""Safety checks over a spec and, when given, the cluster's observed state.

Pure: no I/O, no boto3. ``lint(spec)`` checks what the spec file says; ``lint(spec, observed)``
also checks what runs in AWS but is not the spec's to change (launch template versions in use,
services, target groups). Every warning has a stable code listed in :data:`RULES` (the README
and ``ecsspot tf lint`` rely on those codes), a path saying where, and a message saying what to
do. Spec warnings come in document order, then observed ones sorted by path.

The time budget behind several rules: AWS terminates a spot instance 120 s after its
interruption notice. The tasks on it must be deregistered from their target groups (the
deregistration delay) and then stopped (the agent's ``ECS_CONTAINER_STOP_TIMEOUT``) before
that; :data:`SPOT_BUDGET_SECONDS` keeps 30 s of the two minutes for the notice to reach ECS and
for the service scheduler and the drain to act.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from ecsspot import userdata
from ecsspot.events.decide import SPOT_NOTICE_SECONDS as _SPOT_NOTICE
from ecsspot.spec import ClusterSpec, Pool, stop_timeout_seconds
from ecsspot.state import POOL_TAG

if TYPE_CHECKING:
    from ecsspot.state import AsgState, LaunchTemplateState, Observed, ServiceState

__all__ = ["RULES", "SPOT_BUDGET_SECONDS", "SPOT_NOTICE_SECONDS", "LintWarning", "Warning", "lint"]

#: Seconds between a spot interruption notice and the instance's termination (decided once, in
#: ``events.decide``; lint speaks in whole seconds).
SPOT_NOTICE_SECONDS = int(_SPOT_NOTICE)
#: What deregistration delay + container stop timeout may use of the notice.
SPOT_BUDGET_SECONDS = 90

#: Spot capacity pools (instance types) a spot pool should be able to use: ES101's advice for
#: instance_types and ES208's floor for the types instance_requirements resolve to.
SPOT_MIN_TYPES = 3

#: Every lint code and a one-line summary. ES1xx: the spec; ES2xx: observed AWS state.
RULES: Mapping[str, str] = MappingProxyType(
    {
        "ES101": "spot pool with a single instance type (no spot diversification)",
        "ES102": "fewer than 3 subnets (Availability Zones) for spot pools",
        "ES103": "instance weight other than 1 under ECS managed scaling",
        "ES104": "spot pool with capacity_rebalance off",
        "ES105": "managed_termination_protection on but managed_draining off",
        "ES106": "drain.deadline_seconds over the 120 s spot notice",
        "ES107": "cluster default strategy puts base capacity on a spot pool",
        "ES108": "ECS_CONTAINER_STOP_TIMEOUT over the 90 s spot budget",
        "ES201": "launch template version of a spot ASG lacks ECS_ENABLE_SPOT_INSTANCE_DRAINING",
        "ES202": "launch template version of an ASG does not require IMDSv2",
        "ES203": "ASG launches from $Latest or $Default instead of a numbered template version",
        "ES204": "deregistration delay + container stop timeout over 90 s on spot capacity",
        "ES205": "service on spot capacity with minimumHealthyPercent 100 or more",
        "ES206": "spec target group not found",
        "ES207": "service strategy puts base capacity on a spot capacity provider",
        "ES208": "instance_requirements of a spot pool resolve to fewer than 3 instance types",
    }
)


@attrs.frozen
class LintWarning:
    """One finding: a stable ``code`` (see RULES), where (``path``) and what to do (``message``)."""

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.path}: {self.message}"


def __getattr__(name: str) -> type[LintWarning]:
    # ``ecsspot.lint.Warning`` was this class's first name (DESIGN.md); kept importable without
    # shadowing the builtin inside this module.
    if name == "Warning":
        return LintWarning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lint(spec: ClusterSpec, observed: Observed | None = None) -> tuple[LintWarning, ...]:
    """Every warning for ``spec`` (and ``observed``, if given): spec ones in document order, then observed ones by path.

    ``observed`` is expected to come from ``observe.observe(spec)`` with services (its default):
    when the cluster exists, a spec target group missing from ``observed.target_groups`` is
    reported as not found.
    """
    found = list(_spec_warnings(spec))
    if observed is not None:
        found += sorted(_observed_warnings(spec, observed), key=lambda w: (w.path, w.code, w.message))
    return tuple(found)


# --- the spec --------------------------------------------------------------------------------


def _spec_warnings(spec: ClusterSpec) -> Iterator[LintWarning]:
    spot = [p for p in spec.pools if p.has_spot]
    spot_names = _names(spot)

    subnets = spec.network.subnets
    if spot and len(subnets) < 3:
        yield LintWarning(
            "ES102",
            "network.subnets",
            f"spot {_plural(len(spot), 'pool')} {spot_names} {'use' if len(spot) > 1 else 'uses'} "
            f"{len(subnets)} {_plural(len(subnets), 'subnet')}: list subnets in at least 3 Availability Zones "
            "so Auto Scaling can find spot capacity in more pools and one zone's reclaim does not take them all",
        )

    stop = stop_timeout_seconds(spec)
    if spot and stop > SPOT_BUDGET_SECONDS:
        raw = spec.instances.ecs_config.get(userdata.STOP_TIMEOUT_KEY, userdata.DEFAULT_STOP_TIMEOUT)
        yield LintWarning(
            "ES108",
            f"instances.ecs_config.{userdata.STOP_TIMEOUT_KEY}",
            f"{raw} ({_seconds(stop)} s) is more than the {SPOT_BUDGET_SECONDS} s of the 2-minute spot notice that "
            "deregistration and stopping may use, so tasks on an interrupted instance are killed mid-stop; lower it "
            "(e.g. 30s) so that it plus the target groups' deregistration delay stays within "
            f"{SPOT_BUDGET_SECONDS} s, and make containers exit promptly on SIGTERM",
        )

    for i, pool in enumerate(spec.pools):
        yield from _pool_warnings(pool, f"pools[{i}]")

    by_name = {p.name: p for p in spec.pools}
    for i, item in enumerate(spec.strategy):
        target = by_name.get(item.pool)
        if target is not None and target.has_spot and item.base > 0:
            yield LintWarning(
                "ES107",
                f"strategy[{i}].base",
                f"the cluster default strategy runs its base of {item.base} {_plural(item.base, 'task')} on spot "
                f"pool {target.name!r}, where one interruption can stop {_them(item.base)} at once; put the base on an "
                "on-demand pool (on_demand_percentage_above_base: 100) and give the spot pool base 0",
            )

    if spot and spec.drain.deadline_seconds > SPOT_NOTICE_SECONDS:
        yield LintWarning(
            "ES106",
            "drain.deadline_seconds",
            f"{spec.drain.deadline_seconds} s is longer than the {SPOT_NOTICE_SECONDS} s between a spot notice and "
            f"termination for spot {_plural(len(spot), 'pool')} {spot_names}, so a spot drain can never finish "
            "in time; set it to at most 120 (110 keeps a margin for the drain's own calls)",
        )


def _pool_warnings(pool: Pool, p: str) -> Iterator[LintWarning]:
    if pool.has_spot and len(pool.instance_types) == 1:
        only = pool.instance_types[0].type
        yield LintWarning(
            "ES101",
            f"{p}.instance_types",
            f"spot pool {pool.name!r} has one instance type ({only}): each type is a separate spot capacity pool, "
            "and with one the whole pool is interrupted together and cannot be replaced when it runs dry; list "
            f"at least {SPOT_MIN_TYPES} similar types (other families or generations of the same size)",
        )
    weighted = [t for t in pool.instance_types if t.weight != 1]
    if weighted and pool.managed_scaling is not None:
        listed = ", ".join(f"{t.type} (weight {t.weight})" for t in weighted)
        yield LintWarning(
            "ES103",
            f"{p}.instance_types",
            f"pool {pool.name!r} weights {listed}, but ECS managed scaling counts every instance as 1, so its "
            "desired capacity comes out wrong; use types of one size with weight 1, or set managed_scaling: false",
        )
    if pool.has_spot and not pool.capacity_rebalance:
        yield LintWarning(
            "ES104",
            f"{p}.capacity_rebalance",
            f"spot pool {pool.name!r} waits for the 2-minute interruption notice instead of replacing instances "
            "on the earlier rebalance recommendation; set capacity_rebalance: true",
        )
    if pool.managed_termination_protection and not pool.managed_draining:
        yield LintWarning(
            "ES105",
            f"{p}.managed_draining",
            f"pool {pool.name!r} protects instances from scale-in but ECS will not drain the ones Auto Scaling "
            "terminates anyway (capacity rebalance, AZ rebalance, health replacement, instance refresh), so their "
            "tasks stop without replacements; set managed_draining: true",
        )


# --- observed state --------------------------------------------------------------------------


def _observed_warnings(spec: ClusterSpec, observed: Observed) -> Iterator[LintWarning]:
    for i, pool in enumerate(spec.pools):
        resolved = observed.resolved_types.get(pool.name)
        if pool.has_spot and resolved is not None and len(resolved) < SPOT_MIN_TYPES:
            listed = ", ".join(resolved) or "none"
            yield LintWarning(
                "ES208",
                f"pools[{i}].instance_requirements",
                f"the instance_requirements of spot pool {pool.name!r} resolve to {len(resolved)} instance "
                f"{_plural(len(resolved), 'type')} ({listed}) for the launch template's AMI: with fewer than "
                f"{SPOT_MIN_TYPES} spot capacity pools one shortage interrupts the pool at once; widen the vCPU "
                "and memory ranges, allow more CPU manufacturers or generations, or exclude fewer types",
            )
    for asg in observed.asgs.values():
        yield from _asg_warnings(spec, asg, observed.launch_template)

    spot_providers = {spec.capacity_provider_name(p) for p in spec.pools if p.has_spot}
    default_strategy = _default_strategy(spec, observed)
    stop = stop_timeout_seconds(spec)
    # Target group ARN -> who puts spot-backed targets in it (for the message).
    spot_groups: dict[str, list[str]] = {}
    if spot_providers:
        spot_groups = {arn: ["the spec's target_groups"] for arn in spec.target_groups}

    for service in observed.services:
        strategy = _service_strategy(service, default_strategy)
        on_spot = sorted({_provider(item) for item in strategy if _places_tasks(item)} & spot_providers)
        if not on_spot:
            continue
        for arn in service.target_group_arns:
            spot_groups.setdefault(arn, []).append(f"service {service.name}")
        if service.minimum_healthy_percent >= 100:
            yield LintWarning(
                "ES205",
                f"service:{service.name}",
                f"service {service.name!r} runs on spot ({', '.join(on_spot)}) with minimumHealthyPercent "
                f"{service.minimum_healthy_percent}: on an interruption ECS keeps its tasks on the draining "
                "instance until replacements are healthy, which rarely happens within 2 minutes, so they die with "
                "the instance; set deploymentConfiguration.minimumHealthyPercent below 100 (e.g. 50)",
            )
        for item in service.capacity_provider_strategy:
            base = int(item.get("base", 0) or 0)
            if _provider(item) in spot_providers and base > 0:
                yield LintWarning(
                    "ES207",
                    f"service:{service.name}",
                    f"service {service.name!r} runs its base of {base} {_plural(base, 'task')} on spot capacity "
                    f"provider {_provider(item)!r}, where one interruption can stop {_them(base)} at once; move the "
                    "base to an on-demand capacity provider in the service's capacity provider strategy",
                )

    for arn, users in spot_groups.items():
        group = observed.target_groups.get(arn)
        if group is None:
            continue
        total = group.deregistration_delay + stop
        if total > SPOT_BUDGET_SECONDS:
            fit = int(SPOT_BUDGET_SECONDS - stop)
            if fit > 0:
                fix = f"set its deregistration_delay.timeout_seconds to at most {fit} or lower ECS_CONTAINER_STOP_TIMEOUT"
            else:
                fix = (
                    "lower ECS_CONTAINER_STOP_TIMEOUT (e.g. 30s), then set the deregistration_delay.timeout_seconds "
                    f"to at most {SPOT_BUDGET_SECONDS} s minus it"
                )
            yield LintWarning(
                "ES204",
                f"target_group:{arn}",
                f"target group {group.name} (used by {', '.join(users)}) has deregistration delay "
                f"{group.deregistration_delay} s + container stop timeout {_seconds(stop)} s = {_seconds(total)} s, "
                f"more than the {SPOT_BUDGET_SECONDS} s that fit in the 2-minute spot notice, so in-flight requests "
                f"fail when the instance dies; {fix}",
            )

    if observed.exists:
        for arn in spec.target_groups:
            if arn not in observed.target_groups:
                yield LintWarning(
                    "ES206",
                    f"target_group:{arn}",
                    "this target group in the spec's target_groups was not found (deleted, mistyped, or in another "
                    "account or region), so drains cannot deregister its targets; fix the ARN or remove it",
                )


def _asg_warnings(spec: ClusterSpec, asg: AsgState, template: LaunchTemplateState | None) -> Iterator[LintWarning]:
    path = f"asg:{asg.name}"
    version = asg.template_version or "$Default"
    if version in ("$Latest", "$Default"):
        yield LintWarning(
            "ES203",
            path,
            f"Auto Scaling group {asg.name!r} launches from launch template version {version}, so any new version "
            "reaches new instances at once, with no review, rollout or rollback; pin a numbered version "
            "(`ecsspot apply` does, and `ecsspot refresh` rolls it out)",
        )
    data, number = _template_data(asg, template, version)
    if data is None or template is None:
        return  # another template, or a version nobody described: nothing to judge
    where = f"launch template {template.name} version {number}"
    if _asg_may_run_spot(spec, asg) and not userdata.parse(data.get("UserData") or "").spot_draining:
        yield LintWarning(
            "ES201",
            path,
            f"{where}, used by spot Auto Scaling group {asg.name!r}, does not set "
            f"{userdata.SPOT_DRAINING_KEY}=true, so the ECS agent does not drain instances on a spot notice; "
            "run `ecsspot apply` to roll out a version with ecsspot's user data (then `ecsspot refresh`)",
        )
    if (data.get("MetadataOptions") or {}).get("HttpTokens") != "required":
        yield LintWarning(
            "ES202",
            path,
            f"{where}, used by Auto Scaling group {asg.name!r}, does not require IMDSv2 (MetadataOptions.HttpTokens "
            "is not 'required'), so any process or SSRF on the instance can read its role credentials; run "
            "`ecsspot apply` to roll out a version that requires IMDSv2",
        )


def _template_data(asg: AsgState, template: LaunchTemplateState | None, version: str) -> tuple[Mapping[str, Any] | None, int]:
    if template is None:
        return None, 0
    ref = asg.template_spec
    if ref.get("LaunchTemplateId") != template.id and ref.get("LaunchTemplateName") != template.name:
        return None, 0
    if version == "$Latest":
        number = template.latest_version
    elif version == "$Default":
        number = template.default_version
    elif version.isdigit():
        number = int(version)
    else:
        return None, 0
    return template.versions.get(number), number


def _asg_may_run_spot(spec: ClusterSpec, asg: AsgState) -> bool:
    for pool in spec.pools:
        ours = spec.asg_name(pool) == asg.name or asg.tags.get(POOL_TAG) == pool.name
        if ours and pool.has_spot:
            return True
    distribution = (asg.mixed_instances_policy or {}).get("InstancesDistribution") or {}
    # AWS's default is 100 (all on-demand) when the field is absent.
    return int(distribution.get("OnDemandPercentageAboveBaseCapacity", 100)) < 100


def _default_strategy(spec: ClusterSpec, observed: Observed) -> list[Mapping[str, Any]]:
    # Both the default in force and the one apply will set: a service is at risk under either.
    by_name = {p.name: p for p in spec.pools}
    desired = [
        {"capacityProvider": spec.capacity_provider_name(by_name[s.pool]), "base": s.base, "weight": s.weight}
        for s in spec.strategy
        if s.pool in by_name
    ]
    current = list(observed.cluster.default_strategy) if observed.cluster is not None else []
    return desired + current


def _service_strategy(service: ServiceState, default: list[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    if service.capacity_provider_strategy:
        return service.capacity_provider_strategy
    if service.launch_type:
        return ()  # EC2 / FARGATE / EXTERNAL launch type: no capacity provider involved
    return default


def _provider(item: Mapping[str, Any]) -> str:
    return str(item.get("capacityProvider", ""))


def _places_tasks(item: Mapping[str, Any]) -> bool:
    # AWS reads an omitted weight or base as 0; an item with both 0 never gets a task.
    return int(item.get("weight", 0) or 0) > 0 or int(item.get("base", 0) or 0) > 0


def _names(pools: list[Pool]) -> str:
    return ", ".join(repr(p.name) for p in pools)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _them(n: int) -> str:
    return "it" if n == 1 else "them all"


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
