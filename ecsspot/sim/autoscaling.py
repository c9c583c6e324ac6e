"""EC2 Auto Scaling: desired capacity, launches, scale-in, lifecycle hooks, capacity rebalance.

moto launches and terminates synchronously inside ``set_desired_capacity``, without lifecycle
hooks, protection-aware termination choices, spot, or replacement of interrupted instances.
The seam routes a group's capacity changes here; this module keeps each group at its desired
capacity, in the documented instance lifecycle
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ecsspot.sim import instancetypes
from ecsspot.sim.spot import ON_DEMAND, SPOT, Distribution, Override, purchase_split
from ecsspot.sim.world import Machine

if TYPE_CHECKING:
    from ecsspot.sim.world import World

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
#: Lifecycle states that count toward desired capacity (Standby and Terminating* do not).
COUNTED = frozenset({"Pending", "Pending:Wait", "Pending:Proceed", "InService"})
# "The maximum amount of time that you can keep an instance in a wait state is 48 hours or 100
# times the heartbeat timeout, whichever is smaller."
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html
GLOBAL_TIMEOUT = 48 * 3600


@attrs.frozen
class LifecycleAction:
    """One hook's wait on one instance; ``result`` is set once it is completed or timed out."""

    token: str
    group: str
    hook: str
    instance_id: str
    transition: str
    default_result: str
    heartbeat_timeout: float
    deadline: float
    global_deadline: float
    result: str | None = None


@attrs.frozen
class Activity:
    """A scaling activity, as DescribeScalingActivities shows it."""

    activity_id: str
    auto_scaling_group_name: str
    description: str
    cause: str
    start_time: Any
    end_time: Any
    status_code: str
    status_message: str = ""
    progress: int = 100
    details: str = "{}"


class LifecycleError(Exception):
    """No lifecycle action matches a CompleteLifecycleAction / heartbeat request."""


class AutoScaling:
    def __init__(self, world: World) -> None:
        self.world = world
        self.actions: dict[str, LifecycleAction] = {}
        self.activities: dict[str, list[Activity]] = {}
        self._retry_at: dict[str, float] = {}
        #: capacity rebalancing: at-risk instance -> its replacement (None until launched)
        self._at_risk: dict[str, str | None] = {}
        self._reconciling: set[str] = set()

    # groups and their instances
    def group(self, name: str | None) -> Any:
        return self.world.asg.autoscaling_groups.get(name) if name else None

    def _state(self, group: Any, instance_id: str) -> Any:
        return next((s for s in group.instance_states if s.instance.id == instance_id), None)

    def _counted(self, group: Any) -> list[Any]:
        return [
            s
            for s in group.instance_states
            if s.lifecycle_state in COUNTED and s.instance.id not in self._at_risk
        ]

    def _weight(self, state: Any) -> int:
        machine = self.world.machine(state.instance.id)
        return machine.weight if machine else 1

    def _hooks(self, group: Any, transition: str) -> list[Any]:
        return [
            h
            for h in self.world.asg.lifecycle_hooks.values()
            if h.auto_scaling_group_name == group.name and h.lifecycle_transition == transition
        ]

    # desired capacity
    def set_desired(self, group: Any, capacity: int | None) -> None:
        """The seam's ``FakeAutoScalingGroup.set_desired_capacity``."""
        group.desired_capacity = group.min_size if capacity is None else capacity
        self.reconcile(group)

    def reconcile(self, group: Any) -> None:
        """Launch or terminate so the group's counted capacity meets its desired capacity."""
        # Terminations and launches below call back here; the outer pass already accounts for them.
        if group.name in self._reconciling:
            return
        self._reconciling.add(group.name)
        try:
            self._reconcile(group)
        finally:
            self._reconciling.discard(group.name)

    def _reconcile(self, group: Any) -> None:
        suspended = set(group._suspended_processes or ())
        counted = self._counted(group)
        units = sum(self._weight(s) for s in counted)
        desired = group.desired_capacity or 0
        if units < desired and "Launch" not in suspended:
            if self.world.now() >= self._retry_at.get(group.name, float("-inf")):
                self._launch(group, desired - units)
        elif units > desired and "Terminate" not in suspended:
            self._scale_in(group, units - desired)

    def due(self) -> float | None:
        """When a tick next has something to do: a lifecycle action's timeout, a launch retry."""
        times = [min(a.deadline, a.global_deadline) for a in self.actions.values() if a.result is None]
        times += self._retry_at.values()
        return min(times, default=None)

    def tick(self) -> None:
        now = self.world.now()
        for action in list(self.actions.values()):
            if action.result is None and now >= min(action.deadline, action.global_deadline):
                self.world.record(
                    "asg.lifecycle_timeout", action.instance_id, hook=action.hook, result=action.default_result
                )
                self._settle(action, action.default_result)
        for name in list(self._retry_at):
            group = self.group(name)
            if group is None:
                del self._retry_at[name]
            elif now >= self._retry_at[name]:
                del self._retry_at[name]
                self.reconcile(group)

    # launching
    def _overrides(self, group: Any) -> tuple[list[Override], Distribution]:
        policy = group.mixed_instances_policy
        if policy:
            overrides = []
            for i, o in enumerate(policy.get("LaunchTemplate", {}).get("Overrides") or []):
                if o.get("InstanceType"):
                    overrides.append(Override(o["InstanceType"], int(o.get("WeightedCapacity") or 1), i))
                elif o.get("InstanceRequirements"):
                    overrides += requirement_overrides(o["InstanceRequirements"], self._architecture(group), i)
            if not overrides:
                overrides = [Override(self._template_data(group).get("InstanceType") or "m5.large")]
            distribution = Distribution.from_api(policy.get("InstancesDistribution"))
            by_attributes = any(o.get("InstanceRequirements") for o in policy.get("LaunchTemplate", {}).get("Overrides") or [])
            if by_attributes and not (policy.get("InstancesDistribution") or {}).get("OnDemandAllocationStrategy"):
                # lowest-price "is the default value for Auto Scaling groups that specify InstanceRequirements".
                distribution = attrs.evolve(distribution, on_demand_strategy="lowest-price")
            return overrides, distribution
        if group.ec2_launch_template is not None:
            data = self._template_data(group)
            market = (data.get("InstanceMarketOptions") or {}).get("MarketType")
            return [Override(data.get("InstanceType") or "m5.large")], Distribution(on_demand_percent=0 if market == "spot" else 100)
        return [Override(group.launch_config.instance_type)], Distribution()

    def _architecture(self, group: Any) -> str:
        """The architecture of the image the group launches: instance requirements launch
        "a compatible CPU architecture based on the Amazon Machine Image (AMI) that you specify
        in your launch template" (API_InstanceRequirements.html, CpuManufacturers)."""
        image = self.world.ec2.amis.get(self._template_data(group).get("ImageId"))
        return getattr(image, "architecture", None) or "x86_64"

    def _template_version(self, group: Any) -> Any:
        return group.ec2_launch_template.get_version(group.launch_template_version)

    def _template_data(self, group: Any) -> Mapping[str, Any]:
        return self._template_version(group).data if group.ec2_launch_template is not None else {}

    def _launch(self, group: Any, missing: int) -> None:
        world = self.world
        overrides, distribution = self._overrides(group)
        desired = group.desired_capacity or 0
        split = purchase_split(desired, distribution.on_demand_base, distribution.on_demand_percent)
        counted = self._counted(group)
        units = Counter({ON_DEMAND: 0, SPOT: 0})
        per_zone = Counter({zone: 0 for zone in group.availability_zones})
        per_type: Counter[str] = Counter()
        for state in counted:
            machine = world.machine(state.instance.id)
            lifecycle = machine.lifecycle if machine else ON_DEMAND
            units[lifecycle] += self._weight(state)
            per_zone[state.availability_zone] += 1
            per_type[state.instance_type] += 1
        launched: list[str] = []
        while missing > 0:
            # "The base portion is launched first"; then whichever purchase option is short.
            on_demand_gap = split.on_demand - units[ON_DEMAND]
            lifecycle = ON_DEMAND if on_demand_gap > 0 or split.spot - units[SPOT] <= 0 else SPOT
            # "attempts to balance your capacity evenly across your specified Availability Zones"
            zone = min(group.availability_zones, key=lambda z: (per_zone[z], group.availability_zones.index(z)))
            choice = world.market.choose(
                group=group.name,
                overrides=overrides,
                availability_zone=zone,
                lifecycle=lifecycle,
                distribution=distribution,
                in_use=per_type,
            )
            if choice is None:
                self._launch_failed(group, zone)
                break
            instance_id = self._run_instance(group, choice, zone, lifecycle)
            launched.append(instance_id)
            units[lifecycle] += choice.weight
            per_zone[zone] += 1
            per_type[choice.instance_type] += 1
            missing -= choice.weight
        for at_risk, replacement in list(self._at_risk.items()):
            if replacement is None and launched and self._in_group(group, at_risk):
                self._at_risk[at_risk] = launched.pop(0)

    def _launch_failed(self, group: Any, zone: str) -> None:
        # What the activity history shows when no spot pool in the overrides has capacity
        # (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ts-as-capacity.html); every
        # attempt is an activity of its own, retried a little later.
        message = (
            "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
            "capacity available that matches your request. Launching EC2 instance failed."
        )
        description = "Launching a new EC2 instance.  Status Reason: " + message
        self.world.record("asg.launch_failed", group.name, availability_zone=zone, message=message)
        self._activity(group, description, "Failed", message)
        self.world.events.emit(
            "aws.autoscaling",
            "EC2 Instance Launch Unsuccessful",
            {
                "StatusCode": "Failed",
                "AutoScalingGroupName": group.name,
                "Description": description,
                "StatusMessage": message,
                "Details": {"Availability Zone": zone},
            },
            resources=[group.arn],
        )
        self._retry_at[group.name] = self.world.now() + self.world.timings.launch_retry

    def _run_instance(self, group: Any, choice: Override, zone: str, lifecycle: str) -> str:
        world = self.world
        kwargs: dict[str, Any] = {
            "instance_type": choice.instance_type,
            "placement": zone,
            "is_instance_type_default": False,
            "tags": {"instance": {**group.get_propagated_tags(), "aws:autoscaling:groupName": group.name}},
        }
        subnet = self._subnet(group, zone)
        if subnet:
            kwargs["subnet_id"] = subnet
        if group.ec2_launch_template is not None:
            version = self._template_version(group)
            kwargs["launch_template"] = {"LaunchTemplateId": group.ec2_launch_template.id, "Version": str(version.number)}
            image_id, user_data = version.image_id, _user_data(version.data.get("UserData"))
            kwargs["tags"]["instance"].update(version.instance_tags)
        else:
            config = group.launch_config
            image_id, user_data = config.image_id, config.user_data
            kwargs["associate_public_ip"] = config.associate_public_ip_address
        reservation = world.ec2.run_instances(image_id, 1, user_data, [], **kwargs)
        instance = reservation.instances[0]
        # LaunchTime on the world's clock (moto stamps the host's): what a report of instance-hours reads.
        instance.launch_time = world.datetime().replace(tzinfo=None)
        # EC2 reports a new instance as pending until it has booted.
        instance._state.name, instance._state.code = "pending", 0
        if lifecycle == SPOT:
            instance.lifecycle = "spot"
        instance.autoscaling_group = group
        from moto.autoscaling.models import InstanceState

        # moto's InstanceState declares no weighted_capacity (set below for weighted groups).
        state: Any = InstanceState(instance, lifecycle_state="Pending", protected_from_scale_in=group.new_instances_protected_from_scale_in)
        if group.mixed_instances_policy and any(
            "WeightedCapacity" in o for o in group.mixed_instances_policy["LaunchTemplate"].get("Overrides") or []
        ):
            state.weighted_capacity = str(choice.weight)
        group.instance_states.append(state)
        world.machines[instance.id] = Machine(
            instance_id=instance.id,
            instance_type=choice.instance_type,
            availability_zone=zone,
            lifecycle=lifecycle,
            group=group.name,
            launched_at=world.now(),
            weight=choice.weight,
        )
        world.record("ec2.launched", instance.id, group=group.name, lifecycle=lifecycle, instance_type=choice.instance_type, availability_zone=zone)
        world.events.ec2_state_change(instance.id, "pending")
        self._activity(group, f"Launching a new EC2 instance: {instance.id}", "Successful")
        world.at(world.timings.instance_boot, lambda: self._booted(instance.id))
        return instance.id

    def _subnet(self, group: Any, zone: str) -> str | None:
        if not group.vpc_zone_identifier:
            return None
        for subnet_id in group.vpc_zone_identifier.split(","):
            subnet = self.world.ec2.get_subnet(subnet_id.strip())
            if subnet.availability_zone == zone:
                return subnet.id
        return None

    def _booted(self, instance_id: str) -> None:
        world = self.world
        machine = world.machine(instance_id)
        if machine is None or machine.terminated_at is not None:
            return
        instance = world.ec2.get_instance_by_id(instance_id)
        instance._state.name, instance._state.code = "running", 16
        world.update_machine(instance_id, running_at=world.now())
        world.record("ec2.state", instance_id, state="running")
        world.events.ec2_state_change(instance_id, "running")
        world.agent.booted(instance_id)
        group = self.group(machine.group)
        state = self._state(group, instance_id) if group is not None else None
        if state is None or state.lifecycle_state != "Pending":
            return
        hooks = self._hooks(group, LAUNCHING)
        if hooks:
            self._wait(group, state, hooks, LAUNCHING, "Pending:Wait")
        else:
            self._in_service(group, state)

    def _in_service(self, group: Any, state: Any) -> None:
        world = self.world
        state.lifecycle_state = "InService"
        world.record("asg.lifecycle", state.instance.id, group=group.name, state="InService")
        world.events.emit(
            "aws.autoscaling",
            "EC2 Instance Launch Successful",
            {
                "StatusCode": "InProgress",
                "AutoScalingGroupName": group.name,
                "EC2InstanceId": state.instance.id,
                "Description": f"Launching a new EC2 instance: {state.instance.id}",
                "Details": {"Availability Zone": state.availability_zone},
            },
            resources=[group.arn, f"arn:aws:ec2:{world.region}:{world.account_id}:instance/{state.instance.id}"],
        )
        for tg_arn in group.target_group_arns:
            tg = world.elbv2.target_groups.get(tg_arn)
            if tg is not None:
                world.alb.register(tg, [{"Id": state.instance.id, "Port": tg.port}])
        # A capacity-rebalancing replacement is up: now the at-risk instance may go.
        for at_risk, replacement in list(self._at_risk.items()):
            if replacement == state.instance.id:
                old = self._state(group, at_risk)
                if old is not None and old.lifecycle_state in COUNTED:
                    self.begin_termination(group, old, "an instance was replaced by capacity rebalancing")

    def sync_target_groups(self, group: Any) -> None:
        """The seam's ``update_attached_target_groups``: register InService instances only."""
        for tg_arn in group.target_group_arns:
            tg = self.world.elbv2.target_groups.get(tg_arn)
            if tg is None:
                continue
            targets = [{"Id": s.instance.id, "Port": tg.port} for s in group.instance_states if s.lifecycle_state == "InService"]
            if targets:
                self.world.alb.register(tg, targets)

    # scale-in and termination
    def _scale_in(self, group: Any, excess: int) -> None:
        candidates = [s for s in self._counted(group) if not s.protected_from_scale_in]
        desired = group.desired_capacity or 0
        _, distribution = self._overrides(group)
        split = purchase_split(desired, distribution.on_demand_base, distribution.on_demand_percent)
        while excess > 0 and candidates:
            victim = self._termination_choice(group, candidates, split)
            candidates.remove(victim)
            excess -= self._weight(victim)
            self.begin_termination(
                group, victim, "a user request explicitly set group desired capacity changing the desired capacity"
            )
        if excess > 0:
            self.world.record("asg.scale_in_blocked", group.name, reason="remaining instances are protected from scale in")

    def _termination_choice(self, group: Any, candidates: list[Any], split: Any) -> Any:
        """The default termination policy, in its documented order.

        https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-termination-policies.html:
        for mixed instances groups, first the purchase option that is over its share; then the
        Availability Zone with the most instances; then (remaining ties) at random.
        """
        world = self.world

        def lifecycle(state: Any) -> str:
            machine = world.machine(state.instance.id)
            return machine.lifecycle if machine else ON_DEMAND

        pool = candidates
        if group.mixed_instances_policy:
            units = Counter(lifecycle(s) for s in self._counted(group))
            over = SPOT if units[SPOT] - split.spot >= units[ON_DEMAND] - split.on_demand else ON_DEMAND
            pool = [s for s in candidates if lifecycle(s) == over] or candidates
        zones = Counter(s.availability_zone for s in self._counted(group))
        busiest = max(zones[s.availability_zone] for s in pool)
        pool = [s for s in pool if zones[s.availability_zone] == busiest]
        return pool[world.rng.randrange(len(pool))]

    def begin_termination(self, group: Any, state: Any, cause: str) -> None:
        """Terminating, through the group's terminate lifecycle hooks if it has any."""
        world = self.world
        instance_id = state.instance.id
        self._at_risk.pop(instance_id, None)
        state.lifecycle_state = "Terminating"
        world.record("asg.lifecycle", instance_id, group=group.name, state="Terminating", cause=cause)
        self._activity(group, f"Terminating EC2 instance: {instance_id}", "InProgress", cause=cause)
        for tg_arn in group.target_group_arns:
            tg = world.elbv2.target_groups.get(tg_arn)
            if tg is not None:
                world.alb.deregister(tg, [{"Id": instance_id, "Port": tg.port}], missing_ok=True)
        hooks = self._hooks(group, TERMINATING)
        if hooks:
            self._wait(group, state, hooks, TERMINATING, "Terminating:Wait")
        else:
            self._proceed_termination(group, state)
        self.reconcile(group)

    def _proceed_termination(self, group: Any, state: Any) -> None:
        state.lifecycle_state = "Terminating:Proceed"
        self.world.record("asg.lifecycle", state.instance.id, group=group.name, state="Terminating:Proceed")
        self.world.terminate_ec2(state.instance.id)

    def instance_gone(self, instance_id: str) -> None:
        """EC2 terminated the instance (Spot, a user, or this module): leave its group, replace it.

        Without capacity rebalancing, "Amazon EC2 Auto Scaling replaces Spot Instances after the
        Amazon EC2 Spot service interrupts the instances and their health check fails"
        (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html).
        """
        world = self.world
        machine = world.machine(instance_id)
        group = self.group(machine.group if machine else None)
        for token, action in list(self.actions.items()):
            if action.instance_id == instance_id:
                del self.actions[token]
        self._at_risk.pop(instance_id, None)
        for at_risk, replacement in list(self._at_risk.items()):
            if replacement == instance_id:
                self._at_risk[at_risk] = None
        if group is None:
            return
        state = self._state(group, instance_id)
        if state is None:
            return
        group.instance_states.remove(state)
        world.record("asg.lifecycle", instance_id, group=group.name, state="Terminated")
        world.events.emit(
            "aws.autoscaling",
            "EC2 Instance Terminate Successful",
            {
                "StatusCode": "InProgress",
                "AutoScalingGroupName": group.name,
                "EC2InstanceId": instance_id,
                "Description": f"Terminating EC2 instance: {instance_id}",
                "Details": {"Availability Zone": state.availability_zone},
            },
            resources=[group.arn, f"arn:aws:ec2:{world.region}:{world.account_id}:instance/{instance_id}"],
        )
        self.reconcile(group)

    def interruption_warning(self, instance_id: str) -> None:
        """With capacity rebalancing, "In cases where an instance receives a final two-minute
        interruption notice, Amazon EC2 Auto Scaling calls the termination lifecycle hook and
        attempts to launch a replacement immediately" (capacity rebalancing page above)."""
        machine = self.world.machine(instance_id)
        group = self.group(machine.group if machine else None)
        if group is None or not group.capacity_rebalance:
            return
        state = self._state(group, instance_id)
        if state is not None and state.lifecycle_state in COUNTED:
            self.begin_termination(group, state, "an EC2 Spot Instance interruption notice")

    def rebalance_recommendation(self, instance_id: str) -> None:
        """With capacity rebalancing, launch a replacement first; terminate the at-risk instance
        once the replacement is in service (capacity rebalancing page above)."""
        machine = self.world.machine(instance_id)
        group = self.group(machine.group if machine else None)
        if group is None or not group.capacity_rebalance or instance_id in self._at_risk:
            return
        state = self._state(group, instance_id)
        if state is None or state.lifecycle_state != "InService":
            return
        self._at_risk[instance_id] = None
        self.world.record("asg.rebalance", instance_id, group=group.name)
        self.reconcile(group)

    def terminate_in_group(self, instance_id: str, decrement: bool) -> Activity:
        """TerminateInstanceInAutoScalingGroup: through the hooks; protection does not apply."""
        machine = self.world.machine(instance_id)
        group = next(
            (g for g in self.world.asg.autoscaling_groups.values() if self._state(g, instance_id) is not None),
            self.group(machine.group if machine else None),
        )
        state = self._state(group, instance_id) if group is not None else None
        if state is None:
            from moto.autoscaling.exceptions import ValidationError

            raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        if decrement:
            # A decrement may not take the group below MinSize: AWS answers ValidationError with
            # this message (API_TerminateInstanceInAutoScalingGroup.html documents the flag; the
            # refusal as AWS words it: aws/aws-cli#47, hashicorp/nomad-autoscaler#1290).
            if (group.desired_capacity or 0) - 1 < (group.min_size or 0):
                from moto.autoscaling.exceptions import ValidationError

                raise ValidationError(
                    f"Currently, desiredSize equals minSize ({group.min_size}). Terminating instance without replacement will "
                    "violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower "
                    "group's min size."
                )
            group.desired_capacity = (group.desired_capacity or 0) - 1
        if not state.lifecycle_state.startswith("Terminating"):
            self.begin_termination(group, state, "a user request")
        return next(a for a in reversed(self.activities[group.name]) if instance_id in a.description)

    def delete_group(self, name: str, force: bool) -> None:
        """DeleteAutoScalingGroup: refused while instances remain, unless ForceDelete, which
        terminates them "without waiting" and drops their lifecycle actions
        (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DeleteAutoScalingGroup.html)."""
        from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError

        group = self.group(name)
        if group is None:
            raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
        if group.instance_states and not force:
            raise AutoscalingClientError(
                "ResourceInUse",
                "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
            )
        del self.world.asg.autoscaling_groups[name]
        for state in list(group.instance_states):
            for token, action in list(self.actions.items()):
                if action.instance_id == state.instance.id:
                    del self.actions[token]
            self.world.terminate_ec2(state.instance.id)
        group.instance_states = []
        self._retry_at.pop(name, None)
        self.world.record("asg.deleted", name, force=force)

    # lifecycle hooks
    def _wait(self, group: Any, state: Any, hooks: list[Any], transition: str, wait_state: str) -> None:
        world = self.world
        state.lifecycle_state = wait_state
        world.record("asg.lifecycle", state.instance.id, group=group.name, state=wait_state)
        now = world.now()
        for hook in hooks:
            timeout = float(hook.heartbeat_timeout)
            action = LifecycleAction(
                token=world.uuid(),
                group=group.name,
                hook=hook.name,
                instance_id=state.instance.id,
                transition=transition,
                default_result=hook.default_result,
                heartbeat_timeout=timeout,
                deadline=now + timeout,
                global_deadline=now + min(GLOBAL_TIMEOUT, 100 * timeout),
            )
            self.actions[action.token] = action
            detail = {
                "LifecycleActionToken": action.token,
                "AutoScalingGroupName": group.name,
                "LifecycleHookName": hook.name,
                "EC2InstanceId": state.instance.id,
                "LifecycleTransition": transition,
            }
            metadata = getattr(hook, "notification_metadata", None)
            if metadata:
                detail["NotificationMetadata"] = metadata
            kind = "EC2 Instance-launch Lifecycle Action" if transition == LAUNCHING else "EC2 Instance-terminate Lifecycle Action"
            world.events.emit("aws.autoscaling", kind, detail, resources=[group.arn])
            self._notify_target(hook, detail)

    def _notify_target(self, hook: Any, detail: Mapping[str, Any]) -> None:
        # The hook's own notification (SQS), in the direct (non-EventBridge) message format of
        # https://docs.aws.amazon.com/autoscaling/ec2/userguide/prepare-for-lifecycle-notifications.html
        target = getattr(hook, "notification_target_arn", None) or ""
        if not target.startswith("arn:aws:sqs:"):
            return
        from moto.sqs.models import sqs_backends

        _, _, _, region, account, queue = target.split(":", 5)
        body = {
            "Origin": "EC2",
            "LifecycleHookName": detail["LifecycleHookName"],
            "Destination": "AutoScalingGroup",
            "AccountId": self.world.account_id,
            "RequestId": self.world.uuid(),
            "LifecycleTransition": detail["LifecycleTransition"],
            "AutoScalingGroupName": detail["AutoScalingGroupName"],
            "Service": "AWS Auto Scaling",
            "Time": self.world.iso(millis=True),
            "EC2InstanceId": detail["EC2InstanceId"],
            "LifecycleActionToken": detail["LifecycleActionToken"],
        }
        if "NotificationMetadata" in detail:
            body["NotificationMetadata"] = detail["NotificationMetadata"]
        try:
            sqs_backends[account][region].send_message(queue_name=queue, message_body=json.dumps(body))
        except Exception as exc:  # noqa: BLE001 - a deleted queue loses the message, as it would in AWS
            self.world.record("asg.notification_failed", detail["EC2InstanceId"], target=target, error=repr(exc))

    def _find_action(self, group: str, hook: str, token: str | None, instance_id: str | None) -> LifecycleAction:
        for action in self.actions.values():
            mine = action.result is None and action.group == group and action.hook == hook
            if mine and ((token and action.token == token) or (not token and action.instance_id == instance_id)):
                return action
        what = f"token {token}" if token else f"instance ID {instance_id}"
        raise LifecycleError(f"No active Lifecycle Action found with {what}")

    def complete(self, group: str, hook: str, token: str | None, instance_id: str | None, result: str) -> None:
        """CompleteLifecycleAction (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html)."""
        action = self._find_action(group, hook, token, instance_id)
        self.world.record("asg.lifecycle_complete", action.instance_id, hook=hook, result=result)
        self._settle(action, result)

    def heartbeat(self, group: str, hook: str, token: str | None, instance_id: str | None) -> None:
        """RecordLifecycleActionHeartbeat restarts the heartbeat timeout (not the global one)."""
        action = self._find_action(group, hook, token, instance_id)
        self.actions[action.token] = attrs.evolve(action, deadline=self.world.now() + action.heartbeat_timeout)
        self.world.record("asg.lifecycle_heartbeat", action.instance_id, hook=hook)

    def _settle(self, action: LifecycleAction, result: str) -> None:
        self.actions[action.token] = attrs.evolve(action, result=result)
        siblings = [a for a in self.actions.values() if a.instance_id == action.instance_id and a.transition == action.transition]
        # ABANDON ends the wait for every hook; otherwise the instance waits for all of them.
        if result != "ABANDON" and any(a.result is None for a in siblings):
            return
        for sibling in siblings:
            del self.actions[sibling.token]
        group = self.group(action.group)
        state = self._state(group, action.instance_id) if group is not None else None
        if state is None:
            return
        if action.transition == TERMINATING:
            self._proceed_termination(group, state)
        elif result == "ABANDON":
            self.begin_termination(group, state, "a launch lifecycle action was abandoned")
        else:
            self._in_service(group, state)

    def _in_group(self, group: Any, instance_id: str) -> bool:
        return self._state(group, instance_id) is not None

    def _activity(self, group: Any, description: str, status: str, message: str = "", cause: str = "") -> None:
        now = self.world.datetime()
        activity = Activity(
            activity_id=self.world.uuid(),
            auto_scaling_group_name=group.name,
            description=description,
            cause=f"At {self.world.iso()} {cause or 'an instance was started in response to a difference between desired and actual capacity'}.",
            start_time=now,
            end_time=now,
            status_code=status,
            status_message=message,
        )
        self.activities.setdefault(group.name, []).append(activity)


def _user_data(value: Any) -> Any:
    """What moto's EC2 wants from a template version's ``UserData``.

    moto keeps version 1's user data as a ``Base64EncodedString`` but later versions as plain
    text (its create_launch_template_version bug); EC2 always holds it base64-encoded.
    """
    from moto.core.types import Base64EncodedString

    if value is None or isinstance(value, Base64EncodedString):
        return value
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error:
        text = base64.b64encode(text.encode()).decode()
    return Base64EncodedString(text)


def user_data_text(value: Any) -> str:
    """Text of an instance's user data as EC2 stores it (base64), for the ECS agent to read."""
    if value is None:
        return ""
    if hasattr(value, "as_bytes"):
        return value.as_bytes().decode()
    return value.decode() if isinstance(value, bytes) else str(value)


def requirement_overrides(requirements: Mapping[str, Any], architecture: str, priority: int) -> list[Override]:
    """The overrides a set of instance requirements stands for: every catalog type with the
    attributes, each marked with the purchase options its price protection admits
    (:func:`ecsspot.sim.instancetypes.matching`, :func:`~ecsspot.sim.instancetypes.price_protected`).
    Weights come from DesiredCapacityType, which ecsspot leaves at ``units``: 1 each."""
    types = instancetypes.matching(requirements, (architecture,))
    on_demand = {t.name for t in instancetypes.price_protected(types, requirements, spot=False)}
    spot = {t.name for t in instancetypes.price_protected(types, requirements, spot=True)}
    return [Override(t.name, 1, priority, t.name in on_demand, t.name in spot) for t in types]
