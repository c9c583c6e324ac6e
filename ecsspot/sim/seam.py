"""The one place where the simulator changes moto (5.2.5).

:class:`Seam` replaces class attributes of moto's models and response handlers while a
:class:`~ecsspot.sim.Simulator` is open and restores them on exit. Both the in-process mock and
``ThreadedMotoServer`` dispatch through the same classes, so one seam serves both. Simulated
behaviour is patched only for the simulator's account and region (other regions keep moto's);
fixes of moto's bugs apply everywhere. All of it is here and nowhere else:

moto bugs AWS does not have (every region; :class:`MotoFixes` installs these alone, without a
simulator, for tests and tools on plain moto; the product relies on AWS's behaviour only)
  ``ec2.responses.launch_templates.LaunchTemplates.create_launch_template_version``: the new
  version inherits every field of the ``SourceVersion`` not sent, overridden by what was sent
  (moto copies nothing), and keeps UserData in the encoded form launches read (moto stores it
  raw, so every later launch from that version fails with HTTP 500)
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplateVersion.html).
  ``AutoScalingBackend.update_auto_scaling_group``: an update without MixedInstancesPolicy keeps
  the group's policy, as "any parameters that you don't specify are not changed by this update
  request" (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html);
  moto drops it, and the group then launches from nothing.
  ``FakeAutoScalingGroup.instance_type``: a group with a mixed instances policy launches its
  first override's type, as the ``prioritized`` on-demand strategy does
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/allocation-strategies.html); moto
  reads the template's InstanceType, which a mixed policy's template need not have, and
  launches instances of type ``""`` (the simulator's own launches choose among the overrides).
  ``EC2ContainerServiceResponse.list_container_instances``: applies the ``filter`` (cluster
  query language) for ``ec2InstanceId in [...]`` and ``ec2InstanceId == ...``
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-query-language.html);
  moto ignores it and lists every instance. Other expressions are refused, not ignored, and so
  is one over 2,000 characters: AWS documents that length for a cluster query expression in a
  placement constraint
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PlacementConstraint.html) and
  none for this filter, so the simulator holds the filter to it rather than accept more than AWS
  may.
  ``core.responses.BaseResponse.call_action`` (DynamoDB only): one DynamoDB request at a time.
  A transaction is atomic and serializable with the writes around it ("Isolation levels for
  DynamoDB transactions",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html); moto
  snapshots whole tables with ``deepcopy`` and, when a transaction is cancelled, puts the whole
  snapshot back, so two transactions at once fail with "dictionary changed size during
  iteration" and a cancelled one undoes writes made meanwhile by others.
  ``ssm.models.convert_to_params``: the ``/aws/service/ecs/optimized-ami/…/recommended``
  documents are JSON, as AWS stores them
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/retrieve-ecs-optimized_AMI.html);
  moto loads them as dicts and answers their Python repr.

  ``ecs.models.Service.__init__``: a service created without a network configuration has none
  (it is only for the ``awsvpc`` network mode, "not supported for other network modes",
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html), so
  DescribeServices leaves ``networkConfiguration`` out; moto answers ``{}``, which crashes the
  aws Terraform provider (flattenNetworkConfiguration).
  ``EC2ContainerServiceResponse.create_service``: keeps availabilityZoneRebalancing, ENABLED
  when not given ("For create service requests, when no value is specified for
  AvailabilityZoneRebalancing, Amazon ECS defaults the value to ENABLED",
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html); moto drops
  it (UpdateService already keeps it), so the aws Terraform provider's DISABLED drifts.
  ``LaunchTemplates.create_launch_template``: the request's own TagSpecifications tag the
  launch template ("To tag the launch template, the resource type must be launch-template. To
  specify the tags for the resources that are created when an instance is launched, you must
  use the TagSpecifications parameter in the launch template data structure",
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html); moto
  also copies them into version 1's LaunchTemplateData, so the data read back differs from the
  data sent.
  ``AutoScalingResponse.describe_auto_scaling_groups``: ``IncludeInstances`` false leaves the
  groups' instances out ("Specifies whether to include information about Amazon EC2 instances
  in the response. When set to true (default), the response includes instance details",
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html);
  moto ignores it and always lists them.
  ``sqs.models.Queue.attributes``: RedrivePolicy reads back as compact JSON, keys in the order
  set and maxReceiveCount a number
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html;
  the compact form seen from AWS in localstack/localstack#1785); moto answers ``json.dumps``'s
  spaced text, so the value read back is not the text written.

moto's cost, not AWS's behaviour (every region, like the fixes)
  ``core.base_backend.BackendDict.reset``: drops every backend without building it again
  first. moto re-runs each region backend's ``__init__`` and then throws the new backend away;
  EC2's loads some 1,300 default AMIs, each with a snapshot and a volume (1-3 s a region),
  on every mock stop and moto-api reset. Backends that clean up on reset (S3's files, Batch's
  threads) still run their own ``reset``.
  ``ec2.models.amis.AmiBackend._load_amis``: the default AMIs' snapshot and volume ids are
  drawn with one ``getrandbits`` each instead of a ``random.choice`` per hex digit (same
  form, ``snap-`` and 17 hex digits; 70 % of building an EC2 backend). The simulator seeds
  moto's random source after its backends exist, so its own ids do not change.
  ``core.serialize.AttributePicker.get_possible_keys`` / ``XFormedAttributePicker.get_possible_keys``:
  the attribute names moto's response serializer tries for a member are worked out once per
  (shape, its parent, picker, object type, key) and kept on the shape, not again for every
  member of every object of every answer (a third of moto's serialising time went there). The names
  depend only on those, except for an object with a ``Meta`` of its own, which is not memoised.
  ``core.responses.method_names_from_class``: a response class's method names are listed once,
  not with ``inspect.getmembers`` on every request.

Locking
  ``core.responses.BaseResponse.call_action``: every request runs under the world's lock, so a
  server thread never sees the world mid-tick.

EC2
  ``ec2.models.instances.Instance.terminate``: tells the world, whoever terminated the instance
  (Spot, Auto Scaling, a user), so the group, the ECS agent and the targets react.
  ``ec2.responses.instances.InstanceResponse.run_instances``: refuses a launch combining
  instance-level security groups with network interfaces (moto accepts it).
  ``InstanceResponse.get_instance_types_from_instance_requirements``: added (moto lacks it),
  from the simulator's instance-type table.

Auto Scaling
  ``AutoScalingBackend.create_auto_scaling_group`` / ``update_auto_scaling_group``: refuse a
  launch template version with both ``SecurityGroupIds`` and ``NetworkInterfaces``, and instance
  requirements AWS refuses (beside an InstanceType, more than four sets, allowed with excluded
  types, two spot price protections, with a ``prioritized`` strategy), before any change (moto
  accepts them).
  ``FakeAutoScalingGroup.set_desired_capacity``: capacity is kept by the simulator (spot
  purchase options, instance types from the overrides, lifecycle hooks, scale-in protection).
  ``AutoScalingBackend.notify_terminate_instances``: moto would replace terminated instances at
  once; the world does it through ``Instance.terminate``.
  ``AutoScalingBackend.terminate_instance``: TerminateInstanceInAutoScalingGroup goes through
  the terminate lifecycle hooks, as in AWS, and refuses to decrement below MinSize.
  ``AutoScalingBackend.update_attached_target_groups``: registers only InService instances
  (moto registers pending ones too, which a load balancer refuses).
  ``AutoScalingResponse.update_auto_scaling_group``: applies CapacityRebalance (moto ignores it).
  ``AutoScalingResponse.delete_auto_scaling_group``: ForceDelete semantics (moto reads no flag
  and leaves protected instances running).
  ``AutoScalingResponse.complete_lifecycle_action`` / ``record_lifecycle_action_heartbeat``:
  added (moto raises NotImplementedError).
  ``AutoScalingResponse.describe_scaling_activities``: the simulator's activities (moto: none).
  ``AutoScalingBackend.set_instance_protection``: refuses more than 50 instance ids and an unknown
  group (moto accepts the one and answers HTTP 500 for the other); an instance whose protection
  is removed in a group above its desired capacity is then scaled in, as Auto Scaling does.
  ``AutoScalingResponse.put_lifecycle_hook``: keeps NotificationTargetARN, RoleARN and
  NotificationMetadata (moto stores fixed placeholders).

ECS
  ``EC2ContainerServiceBackend.describe_container_instances`` / ``update_container_instances_state``:
  a cluster that never had a container instance answers like AWS (moto: KeyError, HTTP 500).
  ``EC2ContainerServiceBackend.list_container_instances``: leaves INACTIVE ones out unless asked.
  ``EC2ContainerServiceBackend.deregister_container_instance``: marks INACTIVE (moto deletes).
  ``EC2ContainerServiceBackend.list_tasks``: filters by serviceName and defaults desiredStatus
  to RUNNING, as AWS does (moto ignores the one and has no default).
  ``EC2ContainerServiceBackend.stop_task``: a service task stops through its target draining.
  ``EC2ContainerServiceBackend.update_service`` / ``delete_service``: counts from the scheduler;
  a deleted service is DRAINING until its tasks have stopped.
  ``EC2ContainerServiceResponse.create_service``: keeps deploymentConfiguration,
  capacityProviderStrategy, placementStrategy and placementConstraints (moto drops them).
  ``EC2ContainerServiceBackend.put_cluster_capacity_providers``: refuses to take a provider in
  use (by a task or a service's strategy) off the cluster; ``delete_capacity_provider``: keeps a
  provider still on a cluster or in a service's strategy, answering ``DELETE_FAILED`` (moto
  accepts both).
  ``CapacityProvider._prepare_asg_provider`` / ``update``: managedDraining defaults to ENABLED,
  as in AWS, and UpdateCapacityProvider applies it (moto ignores it); ECS's own lifecycle hook
  and draining are ``ecsspot.sim.draining``.

ELBv2
  ``FakeTargetGroup.register`` / ``deregister`` / ``deregister_terminated_instances`` and
  ``ELBv2Backend.describe_target_health``: targets keyed by (id, port), with health checks and
  draining (moto keys by id, so a second port replaces the first, and is always healthy).
  ``ELBv2Backend.modify_target_group_attributes``: the Network Load Balancer-only unhealthy
  target attributes refused on other groups (moto accepts any key).

EventBridge
  ``events.models.Rule.send_to_targets``: disabled rules deliver nothing, Lambda targets go to
  in-process handlers (moto raises NotImplementedError for them), the rest through moto.

SQS
  ``sqs.models.unix_time`` / ``unix_time_millis``: every SQS time (sent and first-receive
  timestamps, visibility timeouts, ChangeMessageVisibility, delays, retention) reads the
  simulator's clock, not the wall clock, so a message hidden for 5 s reappears after 5 virtual
  seconds. moto's SQS keeps no per-region clock, so this holds for every region while a
  simulator is open (one per process).
  ``SQSBackend.receive_message``: a long poll (WaitTimeSeconds) answers at once with what is
  visible: time moves only when the world advances, never inside a request (moto would spin on
  a clock that cannot move). The Lambda poller (``ecsspot.sim.eventbridge``) models long
  polling on the virtual clock itself.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecsspot.sim.world import World

_MISSING = object()
_active: Seam | None = None
#: Moves on whenever a Seam or MotoFixes installs or removes its patches (which add and remove
#: methods of moto's response classes): memos of moto's classes are good for one generation only.
#: A MotoFixes can outlive a Seam installed over it (a session's moto server), and the other way round.
_generation = [0]


class Seam:
    """Installs and removes the patches listed in the module docstring."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        global _active
        if _active is not None:
            raise RuntimeError("a Simulator is already running in this process; close it first")
        _active = self
        try:
            for owner, name, factory in _fixes() + _patches():
                original = owner.__dict__.get(name, _MISSING)
                self._saved.append((owner, name, original))
                setattr(owner, name, factory(self.world, None if original is _MISSING else original))
        except BaseException:
            self.remove()
            raise
        _generation[0] += 1

    def remove(self) -> None:
        global _active
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        if _active is self:
            _active = None
        _generation[0] += 1


class MotoFixes:
    """Only the fixes of moto bugs AWS does not have, without any simulated behaviour: for tests
    and tools on plain moto (a ``ThreadedMotoServer`` of their own), as a context manager.

    The first group of the module docstring. A :class:`Seam` installed meanwhile installs them
    again over these (each is idempotent) and puts these back when removed.
    """

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> MotoFixes:
        try:
            for owner, name, factory in _fixes():
                original = owner.__dict__[name]
                self._saved.append((owner, name, original))
                setattr(owner, name, factory(None, original))
        except BaseException:
            self.__exit__()
            raise
        _generation[0] += 1
        return self

    def __exit__(self, *exc: object) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)
        _generation[0] += 1


def _fixes() -> list[tuple[Any, str, Callable[[World | None, Any], Any]]]:
    """The fixes of moto bugs AWS does not have: need no world, apply in every region."""
    from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core import responses as moto_responses
    from moto.core.base_backend import BackendDict
    from moto.core.responses import BaseResponse
    from moto.core.serialize import AttributePicker, XFormedAttributePicker
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.launch_templates import LaunchTemplates
    from moto.ecs.models import Service
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.sqs.models import Queue
    from moto.ssm import models as ssm_models

    return [
        (BaseResponse, "call_action", _serial_dynamodb),
        (LaunchTemplates, "create_launch_template_version", _create_launch_template_version),
        (AutoScalingBackend, "update_auto_scaling_group", _keep_mixed_policy),
        (FakeAutoScalingGroup, "instance_type", _mixed_instance_type),
        (EC2ContainerServiceResponse, "list_container_instances", _filter_container_instances),
        (ssm_models, "convert_to_params", _json_documents),
        (BackendDict, "reset", _lean_reset),
        (AmiBackend, "_load_amis", _fast_default_amis),
        (Service, "__init__", _service_without_network),
        (EC2ContainerServiceResponse, "create_service", _create_service_rebalancing),
        (LaunchTemplates, "create_launch_template", _create_launch_template),
        (Queue, "attributes", _compact_redrive_policy),
        (AutoScalingResponse, "describe_auto_scaling_groups", _include_instances),
        (AttributePicker, "get_possible_keys", _memo_possible_keys),
        (XFormedAttributePicker, "get_possible_keys", _memo_possible_keys),
        (moto_responses, "method_names_from_class", _method_names_once),
    ]


def _method_names_once(world: World | None, original: Any) -> Any:
    # Per class, for one generation of patches: the seam adds actions to response classes.
    listed: dict[type, tuple[int, list[str]]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        known = listed.get(clazz)
        if known is None or known[0] != _generation[0]:
            known = listed[clazz] = (_generation[0], original(clazz))
        return known[1]

    return method_names_from_class


class _WithoutInstances:
    """A group as DescribeAutoScalingGroups shows it with ``IncludeInstances`` false."""

    def __init__(self, group: Any) -> None:
        self._group = group
        self.instances: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._group, name)


def _include_instances(world: World | None, original: Any) -> Any:
    def describe_auto_scaling_groups(self: Any) -> Any:
        result = original(self)
        if self._get_bool_param("IncludeInstances", True) is False:
            groups = result.result["AutoScalingGroups"]
            result.result["AutoScalingGroups"] = [_WithoutInstances(g) for g in groups]
        return result

    return describe_auto_scaling_groups


def _service_without_network(world: World | None, original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not self.network_configuration:
            self.network_configuration = None

    return __init__


def _create_service_rebalancing(world: World | None, original: Any) -> Any:
    def create_service(self: Any) -> Any:
        result = original(self)
        service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        service.availability_zone_rebalancing = self._get_param("availabilityZoneRebalancing") or "ENABLED"
        return result

    return create_service


def _create_launch_template(world: World | None, original: Any) -> Any:
    from moto.ec2.utils import convert_tag_spec

    def create_launch_template(self: Any) -> Any:
        given = copy.deepcopy((self._get_param("LaunchTemplateData") or {}).get("TagSpecifications"))
        result = original(self)
        version = self.ec2_backend.get_launch_template_by_name(self._get_param("LaunchTemplateName")).versions[0]
        if given is None:
            version.data.pop("TagSpecifications", None)
        else:
            version.data["TagSpecifications"] = given
        version.instance_tags = convert_tag_spec(given or []).get("instance", {})
        return result

    return create_launch_template


def _compact_redrive_policy(world: World | None, original: Any) -> Any:
    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = original.fget(self)
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    return property(attributes)


def _fast_default_amis(world: World | None, original: Any) -> Any:
    from moto.ec2 import utils
    from moto.moto_api._internal import mock_random

    def resource_id(size: int = 8) -> str:
        return f"{mock_random.getrandbits(4 * size):0{size}x}"

    def _load_amis(self: Any) -> None:
        slow = utils.random_resource_id
        utils.random_resource_id = resource_id
        try:
            original(self)
        finally:
            utils.random_resource_id = slow

    return _load_amis


#: Where a shape keeps its memo of possible keys (an attribute moto and botocore never use).
_KEYS_MEMO = "_ecsspot_possible_keys"


def _memo_possible_keys(world: World | None, original: Any) -> Any:
    def get_possible_keys(self: Any, context: Any) -> Any:
        obj, shape = context.obj, context.shape
        if shape is None or "Meta" in getattr(obj, "__dict__", ()):
            return original(self, context)  # an object's own Meta may alias per object
        memo = shape.__dict__.get(_KEYS_MEMO)
        if memo is None:
            memo = shape.__dict__[_KEYS_MEMO] = {}
        # The parent is set by the serializer as it walks (a shape reached from two structures
        # has two), and ShapeNameAlias and ShapePrefixAlias read it.
        # ``original`` in the key: XFormedAttributePicker's calls AttributePicker's (both memoised).
        key = (original, tuple(self.alias_providers), type(obj), context.key, getattr(shape, "parent", None))
        keys = memo.get(key)
        if keys is None:
            keys = memo[key] = tuple(original(self, context))
        return keys

    return get_possible_keys


def _lean_reset(world: World | None, original: Any) -> Any:
    from moto.core.base_backend import BackendDict, BaseBackend, backend_lock

    def reset(cls: type) -> None:
        # moto declares _instances on its generic BackendDict, which mypy will not read from the class.
        backend_dicts: Any = BackendDict
        with backend_lock:
            for service in backend_dicts._instances:
                for account in list(service.values()):
                    for regional in list(account.values()):
                        if type(regional).reset is not BaseBackend.reset:
                            regional.reset()
                service.clear()
            backend_dicts._instances.clear()

    return classmethod(reset)


def _patches() -> list[tuple[Any, str, Callable[[World, Any], Any]]]:
    from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.awslambda.responses import LambdaResponse
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.core.responses import BaseResponse
    from moto.ec2.models.instances import Instance
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.instances import InstanceResponse
    from moto.ec2.responses.spot_instances import SpotInstances
    from moto.ecs.models import CapacityProvider, EC2ContainerServiceBackend
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.elbv2.models import ELBv2Backend, FakeTargetGroup
    from moto.events.models import Rule
    from moto.events.responses import EventsHandler
    from moto.sqs import models as sqs_models

    return [
        (BotocoreStubber, "process_request", _shared_reads_first),
        (BaseResponse, "call_action", _locked_call_action),
        (Instance, "terminate", _instance_terminate),
        (InstanceResponse, "run_instances", _run_instances),
        (SpotInstances, "describe_spot_price_history", _describe_spot_price_history),
        (InstanceResponse, "get_instance_types_from_instance_requirements", _get_instance_types_from_instance_requirements),
        (EventsHandler, "test_event_pattern", _test_event_pattern),
        (EC2Response, "get_spot_placement_scores", _get_spot_placement_scores),
        (LambdaResponse, "list_event_source_mappings", _list_event_source_mappings),
        (AutoScalingBackend, "create_auto_scaling_group", _create_auto_scaling_group),
        (FakeAutoScalingGroup, "set_desired_capacity", _set_desired_capacity),
        (AutoScalingBackend, "notify_terminate_instances", _notify_terminate_instances),
        (AutoScalingBackend, "terminate_instance", _terminate_instance),
        (AutoScalingBackend, "update_auto_scaling_group", _update_auto_scaling_group),
        (AutoScalingBackend, "update_attached_target_groups", _update_attached_target_groups),
        (AutoScalingBackend, "set_instance_protection", _set_instance_protection),
        (AutoScalingResponse, "update_auto_scaling_group", _update_capacity_rebalance),
        (AutoScalingResponse, "delete_auto_scaling_group", _delete_auto_scaling_group),
        (AutoScalingResponse, "complete_lifecycle_action", _complete_lifecycle_action),
        (AutoScalingResponse, "record_lifecycle_action_heartbeat", _record_lifecycle_action_heartbeat),
        (AutoScalingResponse, "describe_scaling_activities", _describe_scaling_activities),
        (AutoScalingResponse, "put_lifecycle_hook", _put_lifecycle_hook),
        (EC2ContainerServiceBackend, "describe_container_instances", _cluster_may_be_empty),
        (EC2ContainerServiceBackend, "update_container_instances_state", _cluster_may_be_empty),
        (EC2ContainerServiceBackend, "list_container_instances", _list_container_instances),
        (EC2ContainerServiceBackend, "deregister_container_instance", _deregister_container_instance),
        (EC2ContainerServiceBackend, "list_tasks", _list_tasks),
        (EC2ContainerServiceBackend, "stop_task", _stop_task),
        (EC2ContainerServiceBackend, "update_service", _update_service),
        (EC2ContainerServiceBackend, "delete_service", _delete_service),
        (EC2ContainerServiceResponse, "create_service", _create_service),
        (EC2ContainerServiceBackend, "put_cluster_capacity_providers", _put_cluster_capacity_providers),
        (EC2ContainerServiceBackend, "delete_capacity_provider", _delete_capacity_provider),
        (CapacityProvider, "_prepare_asg_provider", _prepare_asg_provider),
        (CapacityProvider, "update", _update_capacity_provider),
        (FakeTargetGroup, "register", _register),
        (FakeTargetGroup, "deregister", _deregister),
        (FakeTargetGroup, "deregister_terminated_instances", _deregister_terminated_instances),
        (ELBv2Backend, "describe_target_health", _describe_target_health),
        (ELBv2Backend, "modify_target_group_attributes", _modify_target_group_attributes),
        (Rule, "send_to_targets", _send_to_targets),
        (sqs_models, "unix_time", _virtual_unix_time),
        (sqs_models, "unix_time_millis", _virtual_unix_time_millis),
        (sqs_models.SQSBackend, "receive_message", _receive_message),
    ]


# Each factory gets the world and moto's original function and returns the replacement.


#: Requests whose answer depends only on the world's state, which moto answers without changing
#: anything (by response class and action): the drain's verification polls. DescribeTasks is
#: not one (moto advances a task it does not know of on every DescribeTasks).
_CACHED_READS = frozenset(
    {
        ("ELBV2Response", "DescribeTargetHealth"),
        ("EC2ContainerServiceResponse", "DescribeContainerInstances"),
        ("EC2ContainerServiceResponse", "DescribeServices"),
        ("EC2ContainerServiceResponse", "ListTasks"),
        ("EC2ContainerServiceResponse", "ListContainerInstances"),
        ("EC2ContainerServiceResponse", "ListServices"),
    }
)


def _read_version(world: World, target_group_arn: str | None) -> Any:
    """What a shared answer is valid for: the world's version, or for a DescribeTargetHealth
    (of ``target_group_arn``) the writes and the group's revision. A group's health changes with
    its targets, not with every tick: drains polling groups whose targets stand still get the
    one answer across ticks."""
    if target_group_arn is None:
        return world.lock.version
    return (world.lock.writes, world.alb.revision(target_group_arn))


class _Pending(threading.local):
    #: The raw request (see _raw_read_key) being answered on this thread, if a cacheable read.
    key: tuple[Any, ...] | None = None


_pending = _Pending()
_CACHED_ACTIONS = frozenset(action for _, action in _CACHED_READS)
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")


def _raw_read_key(request: Any) -> tuple[Any, ...] | None:
    """The raw request as the key of a shared answer, if it may be one of ``_CACHED_READS``
    (its URL, target header, body, and the access key, region and service it is signed for)."""
    if request.method != "POST":
        return None
    headers = request.headers
    target = headers.get("X-Amz-Target")
    target = target.decode() if isinstance(target, bytes) else target
    body = request.body
    body = body.decode() if isinstance(body, bytes) else body
    if target is not None:
        if target.rpartition(".")[2] not in _CACHED_ACTIONS:
            return None
    elif not isinstance(body, str) or not any(f"Action={a}&" in body for a in _CACHED_ACTIONS):
        return None
    authorization = headers.get("Authorization")
    authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
    credential = _CREDENTIAL.search(authorization or "")
    if credential is None:
        return None
    return (request.url, target, body, *credential.groups())


def _shared_reads_first(world: World, original: Any) -> Any:
    """``BotocoreStubber.process_request``: a read answered before at the current version
    (:func:`_locked_call_action`) is answered again before moto routes and parses the request:
    the same answer, with a request id of its own. Routing and parsing were 40 % of the CPU of a
    shared DescribeTargetHealth in-process."""
    from moto.core.responses import BaseResponse

    def process_request(self: Any, request: Any) -> Any:
        key = _raw_read_key(request)
        if key is None:
            return original(self, request)
        world.lock.acquire()
        try:
            group, version, answer = world.raw_reads.get(key, (None, None, None))
            if answer is not None and version == _read_version(world, group):
                status, headers, body = answer
                return (status, *BaseResponse._enrich_response(dict(headers), body))
        finally:
            world.lock.release()
        _pending.key = key
        try:
            return original(self, request)
        finally:
            _pending.key = None

    return process_request


def _locked_call_action(world: World, original: Any) -> Any:
    def call_action(self: Any) -> Any:
        action = self._get_action()
        if (type(self).__name__, action) not in _CACHED_READS or not world.owns(self.current_account, self.region):
            # May change anything: the world's version moves on. Another service's request
            # changes targets only through LoadBalancing (its groups' revisions move on).
            with world.lock if type(self).__name__ == "ELBV2Response" else world.lock.elsewhere():
                return original(self)
        key = (type(self).__name__, action, self.current_account, self.region, self.uri, self.body, repr(sorted(self.querystring.items())))
        world.lock.acquire()
        try:
            group = self._get_param("TargetGroupArn") if action == "DescribeTargetHealth" else None
            version = _read_version(world, group)
            cached, answer = world.reads.get(key, (None, None))
            if cached != version:
                status, headers, body = original(self)
                if len(world.reads) > 10_000:
                    world.reads.clear()  # answers of older versions: of no use any more
                    world.raw_reads.clear()
                answer = (status, dict(headers), body)
                world.reads[key] = (version, answer)
                if _pending.key is not None:
                    world.raw_reads[_pending.key] = (group, version, answer)
                return status, headers, body
            if _pending.key is not None:
                world.raw_reads[_pending.key] = (group, version, answer)
            status, headers, body = answer
            # Each answer with a request id of its own, as AWS gives.
            return (status, *self._enrich_response(dict(headers), body))
        finally:
            world.lock.release()

    return call_action


def _instance_terminate(world: World, original: Any) -> Any:
    def terminate(self: Any) -> Any:
        previous = original(self)
        if world.owns(self.ec2_backend.account_id, self.ec2_backend.region_name):
            world.instance_terminated(self.id)
        return previous

    return terminate


def _set_desired_capacity(world: World, original: Any) -> Any:
    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        if not world.owns(self.account_id, self.region):
            return original(self, new_capacity)
        world.autoscaling.set_desired(self, new_capacity)
        return None

    return set_desired_capacity


def _notify_terminate_instances(world: World, original: Any) -> Any:
    def notify_terminate_instances(self: Any, instance_ids: list[str]) -> None:
        if not world.owns(self.account_id, self.region_name):
            original(self, instance_ids)

    return notify_terminate_instances


def _terminate_instance(world: World, original: Any) -> Any:
    def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
        if not world.owns(self.account_id, self.region_name):
            return original(self, instance_id, should_decrement)
        return world.autoscaling.terminate_in_group(instance_id, bool(should_decrement))

    return terminate_instance


def _update_auto_scaling_group(world: World, original: Any) -> Any:
    def update_auto_scaling_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        if world.owns(self.account_id, self.region_name):
            _refuse_nic_and_groups(self, kwargs.get("launch_template"), kwargs.get("mixed_instances_policy"))
            group = self.autoscaling_groups.get(kwargs.get("name"))
            _refuse_requirements(kwargs.get("mixed_instances_policy"), getattr(group, "mixed_instances_policy", None))
        return original(self, *args, **kwargs)

    return update_auto_scaling_group


def _update_attached_target_groups(world: World, original: Any) -> Any:
    def update_attached_target_groups(self: Any, group_name: str) -> None:
        if not world.owns(self.account_id, self.region_name):
            return original(self, group_name)
        group = self.autoscaling_groups.get(group_name)
        if group is not None:
            world.autoscaling.sync_target_groups(group)
        return None

    return update_attached_target_groups


#: SetInstanceProtection: "You can specify up to 50 instances"; "If you exceed your maximum limit of
#: instance IDs, which is 50 per Auto Scaling group, the call fails" with LimitExceeded
#: (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceProtection.html).
PROTECTION_IDS = 50


def _set_instance_protection(world: World, original: Any) -> Any:
    def set_instance_protection(self: Any, group_name: str, instance_ids: list[str], protected_from_scale_in: bool | None) -> None:
        from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError

        if not world.owns(self.account_id, self.region_name):
            return original(self, group_name, instance_ids, protected_from_scale_in)
        if len(instance_ids) > PROTECTION_IDS:
            raise AutoscalingClientError("LimitExceeded", f"You can specify up to {PROTECTION_IDS} instances ({len(instance_ids)} given).")
        group = self.autoscaling_groups.get(group_name)
        if group is None:
            raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup {group_name} not found")
        original(self, group_name, instance_ids, protected_from_scale_in)
        if not protected_from_scale_in:
            # "If all instances in an Auto Scaling group are protected from scale in, and a scale-in
            # event occurs, its desired capacity is decremented. However, the Auto Scaling group
            # can't terminate the required number of instances until their instance scale-in
            # protection settings are disabled"
            # (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-instance-protection.html):
            # once they are, the group terminates down to its desired capacity.
            world.autoscaling.reconcile(group)
        return None

    return set_instance_protection


def _update_capacity_rebalance(world: World, original: Any) -> Any:
    def update_auto_scaling_group(self: Any) -> Any:
        result = original(self)
        if self._get_param("CapacityRebalance") is not None:
            group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName"))
            if group is not None:
                group.capacity_rebalance = self._get_bool_param("CapacityRebalance")
        return result

    return update_auto_scaling_group


def _delete_auto_scaling_group(world: World, original: Any) -> Any:
    def delete_auto_scaling_group(self: Any) -> Any:
        from moto.core.responses import EmptyResult

        if not world.owns(self.current_account, self.region):
            return original(self)
        world.autoscaling.delete_group(
            self._get_param("AutoScalingGroupName"), force=bool(self._get_bool_param("ForceDelete", False))
        )
        return EmptyResult()

    return delete_auto_scaling_group


def _lifecycle_request(world: World, response: Any, heartbeat: bool) -> Any:
    from moto.autoscaling.exceptions import ValidationError
    from moto.core.responses import EmptyResult

    from ecsspot.sim.autoscaling import LifecycleError

    target = dict(
        group=response._get_param("AutoScalingGroupName"),
        hook=response._get_param("LifecycleHookName"),
        token=response._get_param("LifecycleActionToken"),
        instance_id=response._get_param("InstanceId"),
    )
    try:
        if heartbeat:
            world.autoscaling.heartbeat(**target)
        else:
            world.autoscaling.complete(**target, result=response._get_param("LifecycleActionResult"))
    except LifecycleError as exc:
        raise ValidationError(str(exc)) from None
    return EmptyResult()


def _complete_lifecycle_action(world: World, original: Any) -> Any:
    def complete_lifecycle_action(self: Any) -> Any:
        return _lifecycle_request(world, self, heartbeat=False)

    return complete_lifecycle_action


def _record_lifecycle_action_heartbeat(world: World, original: Any) -> Any:
    def record_lifecycle_action_heartbeat(self: Any) -> Any:
        return _lifecycle_request(world, self, heartbeat=True)

    return record_lifecycle_action_heartbeat


def _describe_scaling_activities(world: World, original: Any) -> Any:
    def describe_scaling_activities(self: Any) -> Any:
        from moto.core.responses import ActionResult

        if not world.owns(self.current_account, self.region):
            return original(self)
        group = self._get_param("AutoScalingGroupName")
        wanted = set(self._get_param("ActivityIds", []) or [])
        activities = [
            a
            for name, listed in world.autoscaling.activities.items()
            if not group or name == group
            for a in listed
            if not wanted or a.activity_id in wanted
        ]
        activities.sort(key=lambda a: a.start_time, reverse=True)
        limit = self._get_int_param("MaxRecords") or 100
        return ActionResult({"Activities": activities[:limit]})

    return describe_scaling_activities


def _keep_mixed_policy(world: World | None, original: Any) -> Any:
    def update_auto_scaling_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        group = self.autoscaling_groups.get(kwargs.get("name"))
        sends_launch = any(kwargs.get(k) for k in ("mixed_instances_policy", "launch_template", "launch_config_name"))
        if group is not None and group.mixed_instances_policy and not sends_launch:
            policy = copy.deepcopy(group.mixed_instances_policy)
            spec = policy["LaunchTemplate"]["LaunchTemplateSpecification"]
            if spec.get("LaunchTemplateId"):
                # moto stored both the id and the name, which it then refuses as input.
                spec.pop("LaunchTemplateName", None)
            kwargs["mixed_instances_policy"] = policy
        return original(self, *args, **kwargs)

    return update_auto_scaling_group


def _mixed_instance_type(world: World | None, original: Any) -> Any:
    def instance_type(self: Any) -> str:
        overrides = ((self.mixed_instances_policy or {}).get("LaunchTemplate") or {}).get("Overrides") or ()
        first = next((o["InstanceType"] for o in overrides if o.get("InstanceType")), None)
        if first is None:
            from ecsspot.sim import instancetypes

            # Instance requirements: the first type that has the attributes.
            matched = (instancetypes.matching(o["InstanceRequirements"]) for o in overrides if o.get("InstanceRequirements"))
            first = next((types[0].name for types in matched if types), None)
        return first or original.fget(self)

    return property(instance_type)


#: The longest cluster query expression AWS documents (API_PlacementConstraint.html, ``expression``).
_EXPRESSION_CHARS = 2000
#: The cluster query language expressions the simulator evaluates: instance id membership.
_ID_IN = re.compile(r"\s*ec2InstanceId\s+in\s*\[(.*)\]\s*", re.DOTALL)
_ID_IS = re.compile(r"\s*ec2InstanceId\s*==\s*(.*?)\s*")
_ID = re.compile(r"\s*'?([^'\s,\[\]]+)'?\s*")


def _instance_ids_in(expression: str) -> set[str] | None:
    """The instance ids an ``ec2InstanceId`` filter names; None for any other expression."""
    listed = _ID_IN.fullmatch(expression)
    one = None if listed else _ID_IS.fullmatch(expression)
    items = listed.group(1).split(",") if listed else [one.group(1)] if one else None
    if items is None:
        return None
    ids = [_ID.fullmatch(item) for item in items]
    return {m.group(1) for m in ids if m} if all(ids) else None


def _filter_container_instances(world: World | None, original: Any) -> Any:
    def list_container_instances(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.ecs.exceptions import InvalidParameterException

        expression = self._get_param("filter")
        if not expression:
            return original(self)
        if len(expression) > _EXPRESSION_CHARS:
            raise InvalidParameterException(f"filter: a cluster query expression has at most {_EXPRESSION_CHARS} characters, not {len(expression)}")
        wanted = _instance_ids_in(expression)
        if wanted is None:
            raise InvalidParameterException(f"the simulator evaluates only ec2InstanceId filters, not {expression[:100]!r}")
        cluster = self._get_param("cluster", "default")
        listed = self.ecs_backend.list_container_instances(cluster, status=self._get_param("status"))
        instances = self.ecs_backend.container_instances.get(cluster.split("/")[-1], {})
        kept = [arn for arn in listed if instances[arn.split("/")[-1]].ec2_instance_id in wanted]
        return ActionResult({"containerInstanceArns": kept})

    return list_container_instances


def _serial_dynamodb(world: World | None, original: Any) -> Any:
    import threading

    lock = threading.RLock()

    def call_action(self: Any) -> Any:
        if type(self).__name__ != "DynamoHandler":
            return original(self)
        with lock:
            return original(self)

    return call_action


def _json_documents(world: World | None, original: Any) -> Any:
    def convert_to_params(tree: dict[str, Any]) -> list[dict[str, Any]]:
        # AWS's value is compact JSON: {"ecs_agent_version":"1.60.0",...}
        return [
            {**param, "Value": json.dumps(param["Value"], separators=(",", ":"))} if isinstance(param["Value"], dict) else param
            for param in original(tree)
        ]

    return convert_to_params


def _create_launch_template_version(world: World | None, original: Any) -> Any:
    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplateVersion.html:
    # "the new version inherits the launch parameters from the source version. If you specify
    # additional launch parameters, they override the launch parameters from the source."
    def create_launch_template_version(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.ec2.utils import parse_user_data

        if self._get_param("LaunchTemplateId"):
            template = self.ec2_backend.get_launch_template(self._get_param("LaunchTemplateId"))
        else:
            template = self.ec2_backend.get_launch_template_by_name(self._get_param("LaunchTemplateName"))
        sent = self._get_param("LaunchTemplateData", {})
        source = self._get_param("SourceVersion")
        data = {**copy.deepcopy(template.get_version(source).data), **sent} if source else dict(sent)
        if "UserData" in sent:
            data["UserData"] = parse_user_data(self._get_param("LaunchTemplateData.UserData"))
        self.error_on_dryrun()
        version = template.create_version(data, self._get_param("VersionDescription"))
        return ActionResult(
            {
                "LaunchTemplateVersion": {
                    "CreateTime": version.create_time,
                    "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                    "DefaultVersion": template.is_default(version),
                    "LaunchTemplateData": version.data,
                    "LaunchTemplateId": template.id,
                    "LaunchTemplateName": template.name,
                    "VersionDescription": version.description,
                    "VersionNumber": version.number,
                }
            }
        )

    return create_launch_template_version


#: https://docs.aws.amazon.com/autoscaling/ec2/userguide/create-launch-template.html: "If you
#: specify a network interface, you must configure the security group as part of the network
#: interface, and not in the Security Groups section of the template." The messages are AWS's
#: (RunInstances: ansible-collections/amazon.aws#157; Auto Scaling: terraform-provider-aws#4570).
_NIC_AND_GROUPS = "Network interfaces and an instance-level security groups may not be specified on the same request"
_NIC_AND_GROUPS_ASG = "Invalid launch template: When a network interface is provided, the security groups must be a part of it."


def _nic_and_groups(data: Any) -> bool:
    return bool(data.get("SecurityGroupIds") or data.get("SecurityGroups")) and bool(data.get("NetworkInterfaces"))


def _run_instances(world: World, original: Any) -> Any:
    def run_instances(self: Any) -> Any:
        from moto.ec2.exceptions import InvalidParameterCombination

        if world.owns(self.current_account, self.region):
            data: dict[str, Any] = {}
            spec = self._get_param("LaunchTemplate", {})
            if spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName"):
                if spec.get("LaunchTemplateId"):
                    template = self.ec2_backend.get_launch_template(spec["LaunchTemplateId"])
                else:
                    template = self.ec2_backend.get_launch_template_by_name(spec["LaunchTemplateName"])
                data = dict(template.get_version(spec.get("Version") or "$Default").data)
            for key in ("SecurityGroupIds", "SecurityGroups", "NetworkInterfaces"):
                if self._get_param(key):
                    data[key] = self._get_param(key)
            if _nic_and_groups(data):
                raise InvalidParameterCombination(_NIC_AND_GROUPS)
        return original(self)

    return run_instances


#: The product descriptions of the simulated market: it prices Linux only.
_LINUX = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")


def _describe_spot_price_history(world: World, original: Any) -> Any:
    """DescribeSpotPriceHistory answered from the simulated spot market (moto answers a fixed
    0.00001 dated 2006 for every type).

    AWS: "When you specify a start and end time, the operation returns the prices of the instance
    types within that time range. It also returns the last price change before the start time,
    which is the effective price as of the start time", for up to the past 90 days
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html).
    The simulated market's price of a pool (type and Availability Zone) holds from the world's
    start, so each pool answers one point, stamped then: the last change before any start time.
    Nothing when the window ends before the world began. Filters: ``InstanceTypes``,
    ``AvailabilityZone``, ``ProductDescriptions`` (Linux only; other products have no simulated
    price) and the ``availability-zone``, ``instance-type`` and ``product-description`` filters.
    """

    def describe_spot_price_history(self: Any) -> Any:
        from moto.core.responses import ActionResult

        from ecsspot.sim import instancetypes

        if not world.owns(self.current_account, self.region):
            return original(self)
        filters = self._filters_from_querystring()
        types = set(self._get_param("InstanceTypes", []) or []) or set(instancetypes.CATALOG)
        types &= set(filters.get("instance-type") or types)
        zones = {z.name for z in self.ec2_backend.describe_availability_zones()}
        zones &= set(filter(None, [self._get_param("AvailabilityZone")])) or zones
        zones &= set(filters.get("availability-zone") or zones)
        products = [p for p in (self._get_param("ProductDescriptions", []) or ["Linux/UNIX"]) if p in _LINUX]
        products = [p for p in products if p in (filters.get("product-description") or products)]
        end = self._get_param("EndTime")
        if end is not None and _timestamp(end) < world.started_at:
            return ActionResult({"SpotPriceHistory": []})
        history = [
            {
                "InstanceType": t,
                "ProductDescription": product,
                "SpotPrice": f"{world.market.pool(t, zone).price:.6f}",
                "AvailabilityZone": zone,
                "Timestamp": world.datetime(world.started_at),
            }
            for t in sorted(types)
            for zone in sorted(zones)
            for product in products
        ]
        return ActionResult({"SpotPriceHistory": history})

    return describe_spot_price_history


def _get_instance_types_from_instance_requirements(world: World, original: Any) -> Any:
    """GetInstanceTypesFromInstanceRequirements answered from the simulator's instance-type
    table (:func:`ecsspot.sim.instancetypes.matching`); moto lacks the action.

    AWS: "Returns a list of instance types with the specified instance attributes"
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetInstanceTypesFromInstanceRequirements.html).
    The attributes select, price protection does not (it is applied at launch, per purchase
    option). AllowedInstanceTypes with ExcludedInstanceTypes is refused: "you can use one of the
    following parameters, but not both in the same request" (InstanceRequirementsRequest); the
    error code is an inference (EC2's InvalidParameterCombination for parameters that cannot be
    used together). One page answers everything: the table is small.
    """

    def get_instance_types_from_instance_requirements(self: Any) -> Any:
        from moto.core.responses import ActionResult

        from ecsspot.sim import instancetypes

        if original is not None and not world.owns(self.current_account, self.region):
            return original(self)
        requirements = self._get_param("InstanceRequirements") or {}
        if requirements.get("AllowedInstanceTypes") and requirements.get("ExcludedInstanceTypes"):
            from moto.ec2.exceptions import EC2ClientError

            raise EC2ClientError("InvalidParameterCombination", "You can specify either AllowedInstanceTypes or ExcludedInstanceTypes, but not both.")
        types = instancetypes.matching(
            requirements,
            self._get_param("ArchitectureTypes", []) or [],
            self._get_param("VirtualizationTypes", []) or [],
        )
        return ActionResult({"InstanceTypes": [{"InstanceType": t.name} for t in types]})

    return get_instance_types_from_instance_requirements


#: "The JSON must follow the format specified in AWS Events, and the following fields are
#: mandatory: id, account, source, time, region, resources, detail-type"
#: (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_TestEventPattern.html).
_EVENT_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")


def _test_event_pattern(world: World, original: Any) -> Any:
    """TestEventPattern with the pattern matching the simulated bus delivers by (moto's, which
    the simulator's EventBridge uses for every rule); moto answers nothing. An event without
    one of the mandatory fields is refused (the error code is an inference: the API lists
    InvalidEventPatternException and InternalException only, and this one is about the pattern
    test's input)."""

    def test_event_pattern(self: Any) -> Any:
        from moto.events.models import EventPattern

        if not world.owns(self.current_account, self.region):
            return original(self)
        try:
            event = json.loads(self._get_param("Event") or "")
        except ValueError:
            return self.error("InvalidEventPatternException", "Event is not valid JSON.")
        missing = [f for f in _EVENT_FIELDS if not isinstance(event, dict) or f not in event]
        if missing:
            return self.error("InvalidEventPatternException", f"Event is not valid: missing {', '.join(missing)}.")
        pattern = EventPattern.load(self._get_param("EventPattern"))
        return json.dumps({"Result": bool(pattern.matches_event(event))}), self.response_headers

    return test_event_pattern


def _list_event_source_mappings(world: World, original: Any) -> Any:
    """ListEventSourceMappings answers the simulator's own mappings (its SQS pollers, see
    :class:`ecsspot.sim.eventbridge.EventSourceMapping`), in the shape of
    https://docs.aws.amazon.com/lambda/latest/api/API_ListEventSourceMappings.html, filtered by
    ``EventSourceArn`` and ``FunctionName`` (a name or an ARN)."""

    def list_event_source_mappings(self: Any) -> Any:
        from ecsspot.sim.eventbridge import function_name

        if not world.owns(self.current_account, self.region):
            return original(self)
        source = self.querystring.get("EventSourceArn", [None])[0]
        function = self.querystring.get("FunctionName", [None])[0]
        with world.lock:
            mappings = list(world.events.mappings.values())
        listed = [
            {
                "UUID": m.uuid,
                "EventSourceArn": m.queue_arn,
                "FunctionArn": f"arn:aws:lambda:{world.region}:{world.account_id}:function:{m.function}",
                "BatchSize": m.batch_size,
                "MaximumBatchingWindowInSeconds": 0,
                "State": "Enabled",
                "FunctionResponseTypes": ["ReportBatchItemFailures"] if m.report_batch_item_failures else [],
            }
            for m in mappings
            if (source is None or m.queue_arn == source) and (function is None or m.function == function_name(function))
        ]
        return json.dumps({"EventSourceMappings": listed})

    return list_event_source_mappings


def _get_spot_placement_scores(world: World, original: Any) -> Any:
    """GetSpotPlacementScores from the simulated spot market (moto has no such call).

    AWS scores each Region, or with ``SingleAvailabilityZone`` each Availability Zone, "on a scale
    from 1 to 10", returning "the top 10 Regions or Availability Zones", and: "If you specify one
    or two instance types, or specify variations of a single instance type ..., the returned
    placement score will always be low"
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/how-sps-works.html,
    https://docs.aws.amazon.com/cli/latest/reference/ec2/get-spot-placement-scores.html). How AWS
    computes a score is not documented; the simulator's: 1 with fewer than three types, else
    ``1 + 9 x`` the mean spare-capacity depth of the types' pools in the zone that have capacity,
    times the share of the types that have any (a zone where spot capacity is gone scores 1).
    Only the simulated Region is scored. ``TargetCapacity`` (required, 1 to 2e9) is validated
    by botocore; the simulated market has no quantity, so it does not change the score.
    """

    def get_spot_placement_scores(self: Any) -> Any:
        from moto.core.responses import ActionResult

        if not world.owns(self.current_account, self.region):
            return ActionResult({"SpotPlacementScores": []})  # no market outside the simulated account
        types = sorted(set(self._get_param("InstanceTypes", []) or []))
        single = str(self._get_param("SingleAvailabilityZone", "false")).lower() == "true"
        regions = set(self._get_param("RegionNames", []) or [])
        if regions and world.region not in regions:
            return ActionResult({"SpotPlacementScores": []})
        zones = list(self.ec2_backend.describe_availability_zones())

        def score(zone_names: list[str]) -> int:
            if len(types) < 3:
                return 1
            with world.lock:
                have = [world.market.pool(t, z).depth for z in zone_names for t in types if world.market.has_capacity(None, t)]
            if not have:
                return 1
            share = len(have) / (len(types) * len(zone_names))
            return max(1, min(10, round(1 + 9 * (sum(have) / len(have)) * share)))

        if single:
            scores = [{"Region": world.region, "AvailabilityZoneId": z.zone_id, "Score": score([z.name])} for z in zones]
        else:
            scores = [{"Region": world.region, "Score": score([z.name for z in zones])}]
        scores.sort(key=lambda s: -int(s["Score"]))
        return ActionResult({"SpotPlacementScores": scores[:10]})

    return get_spot_placement_scores


def _timestamp(value: Any) -> float:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=value.tzinfo or dt.UTC).timestamp()
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _refuse_nic_and_groups(backend: Any, launch_template: Any, mixed_instances_policy: Any) -> None:
    """The launch template version a Create/UpdateAutoScalingGroup names, checked before moto
    changes anything."""
    from moto.autoscaling.exceptions import AutoscalingClientError

    spec = launch_template or ((mixed_instances_policy or {}).get("LaunchTemplate") or {}).get("LaunchTemplateSpecification") or {}
    if spec.get("LaunchTemplateId"):
        template = backend.ec2_backend.get_launch_template(spec["LaunchTemplateId"])
    elif spec.get("LaunchTemplateName"):
        template = backend.ec2_backend.get_launch_template_by_name(spec["LaunchTemplateName"])
    else:
        return
    if _nic_and_groups(template.get_version(spec.get("Version") or "$Default").data):
        raise AutoscalingClientError("InvalidQueryParameter", _NIC_AND_GROUPS_ASG)


def _create_auto_scaling_group(world: World, original: Any) -> Any:
    def create_auto_scaling_group(self: Any, *args: Any, **kwargs: Any) -> Any:
        if world.owns(self.account_id, self.region_name):
            _refuse_nic_and_groups(self, kwargs.get("launch_template"), kwargs.get("mixed_instances_policy"))
            _refuse_requirements(kwargs.get("mixed_instances_policy"))
        return original(self, *args, **kwargs)

    return create_auto_scaling_group


#: "You can specify up to four separate sets of instance requirements per Auto Scaling group."
_MAX_REQUIREMENT_SETS = 4


def _refuse_requirements(policy: Any, current: Any = None) -> None:
    """A mixed instances policy's instance requirements, checked as AWS documents them
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplateOverrides.html,
    API_InstanceRequirements.html, API_InstancesDistribution.html) before moto stores it; an
    update is judged with the group's current policy for the parts it does not send. moto
    accepts all of it. The messages are the simulator's own; the code is Auto Scaling's
    ValidationError."""
    from moto.autoscaling.exceptions import AutoscalingClientError

    if not policy:
        return
    current = current or {}
    overrides = (policy.get("LaunchTemplate") or {}).get("Overrides")
    if overrides is None:
        overrides = (current.get("LaunchTemplate") or {}).get("Overrides") or []
    distribution = {**(current.get("InstancesDistribution") or {}), **(policy.get("InstancesDistribution") or {})}
    sets = [o["InstanceRequirements"] for o in overrides if o.get("InstanceRequirements")]
    if not sets:
        return

    def refuse(message: str) -> None:
        raise AutoscalingClientError("ValidationError", message)

    if any(o.get("InstanceType") for o in overrides):
        # "If you specify InstanceRequirements, you can't specify InstanceType."
        refuse("You can specify either InstanceType or InstanceRequirements in the overrides, but not both.")
    if len(sets) > _MAX_REQUIREMENT_SETS:
        refuse(f"You can specify up to {_MAX_REQUIREMENT_SETS} sets of instance requirements per Auto Scaling group.")
    for req in sets:
        if not req.get("VCpuCount") or not req.get("MemoryMiB"):
            refuse("InstanceRequirements must specify VCpuCount and MemoryMiB.")
        if req.get("AllowedInstanceTypes") and req.get("ExcludedInstanceTypes"):
            refuse("You can specify either AllowedInstanceTypes or ExcludedInstanceTypes, but not both.")
        if req.get("SpotMaxPricePercentageOverLowestPrice") is not None and req.get("MaxSpotPriceAsPercentageOfOptimalOnDemandPrice") is not None:
            refuse("Only one of SpotMaxPricePercentageOverLowestPrice or MaxSpotPriceAsPercentageOfOptimalOnDemandPrice can be specified.")
    if distribution.get("SpotAllocationStrategy") == "capacity-optimized-prioritized":
        # "This is not a valid value for Auto Scaling groups that specify InstanceRequirements."
        refuse("The capacity-optimized-prioritized Spot allocation strategy is not valid with InstanceRequirements.")
    if distribution.get("OnDemandAllocationStrategy") == "prioritized":
        # prioritized "cannot be used for groups that" specify InstanceRequirements.
        refuse("The prioritized On-Demand allocation strategy is not valid with InstanceRequirements.")


def _put_lifecycle_hook(world: World, original: Any) -> Any:
    def put_lifecycle_hook(self: Any) -> Any:
        result = original(self)
        key = f"{self._get_param('AutoScalingGroupName')}_{self._get_param('LifecycleHookName')}"
        hook = self.autoscaling_backend.lifecycle_hooks.get(key)
        if hook is not None:
            hook.notification_target_arn = self._get_param("NotificationTargetARN")
            hook.role_arn = self._get_param("RoleARN")
            hook.notification_metadata = self._get_param("NotificationMetadata")
        return result

    return put_lifecycle_hook


def _cluster_may_be_empty(world: World, original: Any) -> Any:
    def wrapped(self: Any, cluster_str: str, *args: Any, **kwargs: Any) -> Any:
        cluster = self._get_cluster(cluster_str)
        self.container_instances.setdefault(cluster.name, {})
        return original(self, cluster_str, *args, **kwargs)

    return wrapped


def _list_container_instances(world: World, original: Any) -> Any:
    def list_container_instances(self: Any, cluster_str: str, status: str | None = None) -> list[str]:
        # "If you don't specify this parameter, the default is to include container instances
        # set to all states other than INACTIVE."
        # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListContainerInstances.html)
        listed = original(self, cluster_str, status=status)
        if status is not None:
            return listed
        instances = self.container_instances.get(cluster_str.split("/")[-1], {})
        return [arn for arn in listed if instances[arn.split("/")[-1]].status != "INACTIVE"]

    return list_container_instances


def _deregister_container_instance(world: World, original: Any) -> Any:
    def deregister_container_instance(self: Any, cluster_str: str, container_instance_str: str, force: bool) -> Any:
        from moto.ecs.exceptions import InvalidParameterException

        from ecsspot.sim.agent import deregister

        cluster = self._get_cluster(cluster_str)
        container_instance = self.container_instances.get(cluster.name, {}).get(container_instance_str.split("/")[-1])
        if container_instance is None or not world.owns(self.account_id, self.region_name):
            return original(self, cluster_str, container_instance_str, force)
        if not force and container_instance.running_tasks_count > 0:
            raise InvalidParameterException("Found running tasks on the instance.")
        deregister(world, container_instance)
        return container_instance

    return deregister_container_instance


def _list_tasks(world: World, original: Any) -> Any:
    def list_tasks(
        self: Any,
        cluster_str: str | None = None,
        container_instance: str | None = None,
        family: str | None = None,
        started_by: str | None = None,
        service_name: str | None = None,
        desiredStatus: str | None = None,
    ) -> list[Any]:
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html:
        # desiredStatus defaults to RUNNING; serviceName filters by the task's service.
        tasks = original(self, cluster_str, container_instance, family, started_by, None, desiredStatus or "RUNNING")
        if service_name:
            group = f"service:{service_name.split('/')[-1]}"
            tasks = [t for t in tasks if t.group == group]
        return tasks

    return list_tasks


def _stop_task(world: World, original: Any) -> Any:
    def stop_task(self: Any, cluster_str: str, task_str: str, reason: str) -> Any:
        task_id = task_str.split("/")[-1]
        arn = next((a for a in world.scheduler.runs if a.split("/")[-1] == task_id), None)
        if arn is None:
            return original(self, cluster_str, task_str, reason)
        self._get_cluster(cluster_str)
        return world.scheduler.stop_by_user(arn, reason)

    return stop_task


def _update_service(world: World, original: Any) -> Any:
    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        service = original(self, service_properties)
        if world.owns(self.account_id, self.region_name):
            world.scheduler.publish()
        return service

    return update_service


def _delete_service(world: World, original: Any) -> Any:
    def delete_service(self: Any, cluster_name: str, service_name: str, force: bool) -> Any:
        service = original(self, cluster_name, service_name, force)
        if world.owns(self.account_id, self.region_name):
            # "the service status moves from ACTIVE to DRAINING ... INACTIVE" once its tasks stopped
            # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html)
            service.status = "DRAINING"
        return service

    return delete_service


def _create_service(world: World, original: Any) -> Any:
    def create_service(self: Any) -> Any:
        from moto.ecs.exceptions import InvalidParameterException

        strategy = self._get_param("capacityProviderStrategy")
        launch_type = self._get_param("launchType")
        if strategy and launch_type:
            raise InvalidParameterException("Specifying both a launch type and capacity provider strategy is not supported.")
        result = original(self)
        if not world.owns(self.current_account, self.region):
            return result
        backend = self.ecs_backend
        service = backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        config = {"maximumPercent": 200, "minimumHealthyPercent": 100, "deploymentCircuitBreaker": {"enable": False, "rollback": False}}
        config.update(self._get_param("deploymentConfiguration") or {})
        service.deployment_configuration = config
        cluster = backend.clusters[service.cluster_name]
        if not strategy and not launch_type and cluster.default_capacity_provider_strategy:
            # The cluster's default strategy applies to a service created without either.
            strategy = cluster.default_capacity_provider_strategy
        if strategy:
            service.capacity_provider_strategy = [dict(item) for item in strategy]
            service.launch_type = None
            for deployment in service.deployments:
                deployment["launchType"] = None
                deployment["capacityProviderStrategy"] = service.capacity_provider_strategy
        service.placement_strategy = self._get_param("placementStrategy") or []
        service.placement_constraints = self._get_param("placementConstraints") or []
        service.health_check_grace_period_seconds = self._get_int_param("healthCheckGracePeriodSeconds")
        return result

    return create_service


def _provider_users(backend: Any, cluster: str | None, name: str) -> list[str]:
    """Services (ACTIVE or DRAINING) whose strategy names the provider, and tasks still meant to
    run on it; in ``cluster`` only, or in any cluster."""
    users = [
        f"service {service.name}"
        for service in backend.services.values()
        if (cluster is None or service.cluster_name == cluster)
        and service.status in ("ACTIVE", "DRAINING")
        and any(item.get("capacityProvider") == name for item in getattr(service, "capacity_provider_strategy", None) or ())
    ]
    users += [
        f"task {arn.rsplit('/', 1)[-1]}"
        for cluster_name, tasks in backend.tasks.items()
        if cluster is None or cluster_name == cluster
        for arn, task in tasks.items()
        if getattr(task, "capacity_provider_name", None) == name and task.desired_status != "STOPPED"
    ]
    return users


def _put_cluster_capacity_providers(world: World, original: Any) -> Any:
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PutClusterCapacityProviders.html:
    # "You can only disassociate an existing capacity provider from a cluster if it's not being
    # used by any existing tasks." AWS answers ResourceInUseException "The specified capacity
    # provider is in use and cannot be removed." when services still name it too (seen by CDK and
    # CloudFormation users: aws/aws-cdk#15366, pahud/cdk-fargate-patterns#71).
    def put_cluster_capacity_providers(self: Any, cluster_name: str, capacity_providers: Any, default_strategy: Any) -> Any:
        from moto.ecs.exceptions import ECSException

        if world.owns(self.account_id, self.region_name) and capacity_providers is not None:
            cluster = self._get_cluster(cluster_name)
            leaving = [n for n in cluster.capacity_providers or () if n not in capacity_providers]
            if any(_provider_users(self, cluster.name, n) for n in leaving):
                raise ECSException("ResourceInUseException", "The specified capacity provider is in use and cannot be removed.")
        return original(self, cluster_name, capacity_providers, default_strategy)

    return put_cluster_capacity_providers


def _delete_capacity_provider(world: World, original: Any) -> Any:
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCapacityProvider.html:
    # "Prior to a capacity provider being deleted, the capacity provider must be removed from the
    # capacity provider strategy from all services ... Only capacity providers that aren't
    # associated with a cluster can be deleted." The call itself succeeds; the provider stays
    # ACTIVE with updateStatus DELETE_FAILED and the reason (ekristen/aws-nuke#542).
    def delete_capacity_provider(self: Any, name_or_arn: str) -> Any:
        provider = self._get_provider(name_or_arn)
        if provider is None or not world.owns(self.account_id, self.region_name):
            return original(self, name_or_arn)
        clusters = [c.name for c in self.clusters.values() if c.status == "ACTIVE" and provider.name in (c.capacity_providers or ())]
        users = _provider_users(self, None, provider.name)
        if clusters:
            reason = f"The capacity provider is associated with cluster {clusters[0]}. Remove it from the cluster first."
        elif users:
            reason = f"The capacity provider is in use by {', '.join(users)}."
        else:
            return original(self, name_or_arn)
        provider.update_status = "DELETE_FAILED"
        provider.update_status_reason = reason
        return provider

    return delete_capacity_provider


def _prepare_asg_provider(world: World, original: Any) -> Any:
    # "Managed instance draining is on by default when you create a capacity provider"
    # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/enable-managed-instance-draining.html).
    def prepare(self: Any, asg_details: dict[str, Any]) -> dict[str, Any]:
        prepared = original(self, asg_details)
        if _ours(world, self.capacity_provider_arn):
            prepared.setdefault("managedDraining", "ENABLED")
        return prepared

    return prepare


def _update_capacity_provider(world: World, original: Any) -> Any:
    # UpdateCapacityProvider takes managedDraining
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_AutoScalingGroupProviderUpdate.html);
    # moto applies only managedScaling and managedTerminationProtection.
    def update(self: Any, asg_details: dict[str, Any]) -> None:
        original(self, asg_details)
        if _ours(world, self.capacity_provider_arn) and "managedDraining" in asg_details:
            self.auto_scaling_group_provider["managedDraining"] = asg_details["managedDraining"]

    return update


def _ours(world: World, arn: str) -> bool:
    parts = arn.split(":")
    return len(parts) > 4 and world.owns(parts[4], parts[3])


def _register(world: World, original: Any) -> Any:
    def register(self: Any, targets: list[dict[str, Any]]) -> None:
        if not world.owns(self.account_id, self.region_name):
            return original(self, targets)
        world.alb.register(self, targets)
        return None

    return register


def _deregister(world: World, original: Any) -> Any:
    def deregister(self: Any, targets: list[dict[str, Any]]) -> None:
        if not world.owns(self.account_id, self.region_name):
            return original(self, targets)
        world.alb.deregister(self, targets)
        return None

    return deregister


def _deregister_terminated_instances(world: World, original: Any) -> Any:
    def deregister_terminated_instances(self: Any, instance_ids: list[str]) -> None:
        # Targets of a terminated instance fail their health checks; nothing is removed at once.
        if not world.owns(self.account_id, self.region_name):
            original(self, instance_ids)

    return deregister_terminated_instances


def _describe_target_health(world: World, original: Any) -> Any:
    def describe_target_health(self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> Any:
        from moto.elbv2.exceptions import TargetGroupNotFoundError

        if not world.owns(self.account_id, self.region_name):
            return original(self, target_group_arn, targets)
        tg = self.target_groups.get(target_group_arn)
        if tg is None:
            raise TargetGroupNotFoundError()
        return world.alb.health(tg, targets)

    return describe_target_health


def _modify_target_group_attributes(world: World, original: Any) -> Any:
    def modify_target_group_attributes(self: Any, target_group_arn: str, attributes: dict[str, Any]) -> None:
        tg = self.target_groups.get(target_group_arn)
        if tg is not None and world.owns(self.account_id, self.region_name):
            world.alb.check_attributes(tg, attributes)
        return original(self, target_group_arn, attributes)

    return modify_target_group_attributes


def _send_to_targets(world: World, original: Any) -> Any:
    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if not world.owns(self.account_id, self.region_name):
            return original(self, original_event, transform_input)

        def send_to_others(targets: list[dict[str, Any]]) -> None:
            kept = self.targets
            self.targets = targets
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = kept

        world.events.route(self, original_event, send_to_others)
        return None

    return send_to_targets


def _virtual_unix_time(world: World, original: Any) -> Any:
    def unix_time(dt: Any = None) -> float:
        return world.now() if dt is None else original(dt)

    return unix_time


def _virtual_unix_time_millis(world: World, original: Any) -> Any:
    def unix_time_millis(dt: Any = None) -> float:
        return world.now() * 1000.0 if dt is None else original(dt)

    return unix_time_millis


def _receive_message(world: World, original: Any) -> Any:
    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any, **kwargs: Any) -> Any:
        if world.owns(self.account_id, self.region_name):
            wait_seconds_timeout = 0
        return original(self, queue_name, count, wait_seconds_timeout, *args, **kwargs)

    return receive_message
