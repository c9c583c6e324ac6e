"""The declarative cluster spec: frozen attrs classes, YAML/dict loading, validation, dumping.

Loading collects every problem (wrong types, unknown keys, missing keys, broken rules) and
raises one :class:`~ecsspot.errors.SpecError` listing each with its path, e.g.
``pools[1].on_demand_percentage_above_base: must be 0..100``. Specs built in Python are checked
by :func:`validate` (the Manager calls it before any AWS call).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import AttributeValidationNote, ForbiddenExtraKeysError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn

from ecsspot.errors import Problem, SpecError

SPOT_ALLOCATION_STRATEGIES = (
    "price-capacity-optimized",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "lowest-price",
)
ON_DEMAND_ALLOCATION_STRATEGIES = ("prioritized", "lowest-price")

# Every pattern is applied with fullmatch: `$` would also match before a final newline.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
_INSTANCE_TYPE = re.compile(r"[a-z0-9][a-z0-9-]*\.[a-z0-9]+")
_SUBNET = re.compile(r"subnet-[0-9a-zA-Z]{1,32}")
_SECURITY_GROUP = re.compile(r"sg-[0-9a-zA-Z]{1,32}")
_AMI = re.compile(r"ami-[0-9a-zA-Z]{1,32}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_ASG_NAME = re.compile(r"[\w.:/ -]{1,255}")
_TARGET_GROUP_ARN = re.compile(r"arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup/[A-Za-z0-9_-]{1,32}/[0-9a-f]{1,32}")
_ECS_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(h|m|s|ms))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_PERCENT = re.compile(r"(\d{1,3})%")
#: ECS attribute names and values (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Attribute.html).
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_./\\-]{1,128}")
_ATTRIBUTE_VALUE = re.compile(r"[A-Za-z0-9_./\\@: -]{1,128}")
_SSM_PARAMETER = re.compile(r"/[A-Za-z0-9_.\-/]{1,1010}")
_SSM_AMI = re.compile(r"ssm:/[A-Za-z0-9_.\-/]{1,1010}")
#: An instance profile name (128 of [\w+=,.@-]) or its ARN (IAM quotas and the CreateInstanceProfile model).
_INSTANCE_PROFILE = re.compile(r"[\w+=,.@-]{1,128}|arn:aws[a-z-]*:iam::\d{12}:instance-profile/[\w+=,.@/-]{1,512}")
#: What an ecs.config line cannot carry (a line break ends it; the agent reads lines).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# --- AWS's limits (each cited where it is checked) ---
#: AWS API integers are 32-bit; larger values are refused before any rule applies.
MAX_INT = 2**31 - 1
#: A spec file is read only up to this size: what it renders must fit in 16 KB of user data.
MAX_SPEC_BYTES = 1024 * 1024
#: No spec nests more than a handful of levels; deeper YAML is refused before it is built.
MAX_SPEC_DEPTH = 32
#: LaunchTemplateData.UserData: "User data is limited to 16 KB" (botocore ec2 model), before base64.
MAX_USER_DATA_BYTES = 16 * 1024
#: LaunchTemplateOverrides.InstanceType: "You can specify up to 40 instance types per Auto Scaling group."
MAX_INSTANCE_TYPES = 40
#: CreateAutoScalingGroup VPCZoneIdentifier is XmlStringMaxLen5000 (subnet ids joined by commas).
MAX_VPC_ZONE_IDENTIFIER = 5000
#: Security groups per network interface: 5 by default, a quota adjustable up to 16 (Amazon VPC quotas).
MAX_SECURITY_GROUPS = 16
#: LaunchTemplateName is 3..128 of [a-zA-Z0-9().-/_] (botocore ec2 model); ours is ``<cluster>-ecsspot``.
MAX_LAUNCH_TEMPLATE_NAME = 128
#: EC2 tags: 50 per resource, keys up to 127 characters, values up to 256 (botocore ec2 model, Tag).
#: Instances also carry ecsspot's three (ecsspot:cluster, ecsspot:pool, AmazonECSManaged).
MAX_USER_TAGS = 50 - 3
MAX_TAG_KEY, MAX_TAG_VALUE = 127, 256
#: The metadata hop limit AWS accepts (HttpPutResponseHopLimit: "Integers from 1 to 64").
MAX_HOP_LIMIT = 64

# Registry credentials and other secrets must not sit in user data: anyone who can describe the
# launch template (or reach IMDS on the instance) reads them in plain text.
_SECRET_KEY_PARTS = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|AUTH_DATA")
_SECRET_KEY_WORDS = frozenset({"PASS", "PWD"})
#: ECS agent keys that name secrets without holding one: the profile to read from the
#: instance's own credentials file (https://github.com/aws/amazon-ecs-agent, README "ECS_ALTERNATE_CREDENTIAL_PROFILE").
_NOT_SECRET_KEYS = frozenset({"ECS_ALTERNATE_CREDENTIAL_PROFILE"})
_AWS_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")
# `name = literal` in a script or cloud-config where the name ends like a secret; a value that
# starts with $ (a variable, `$(…)`, a crypt hash), names a reference (arn:, ssm:) or is a
# boolean (cloud-init's `lock_passwd: true`) is not one.
_SECRET_ASSIGNMENT = re.compile(
    r"""(?i)(?<![A-Za-z0-9])(?P<name>[A-Za-z0-9_.-]*(?:passw(?:or)?d|passphrase|secret(?:[_-]?access)?(?:[_-]?key)?|token|api[_-]?key|private[_-]?key|auth[_-]?data)"""
    r"""|(?:[A-Za-z0-9_.-]*[_.-])?pass)\s*[:=]\s*["']?(?!\$|`|arn:|ssm:|\{\{|(?:true|false|yes|no|null|none)(?![^\s"',}\]]))"""
    r"""(?P<value>[^\s"']{4,})"""
)
_RESERVED_CP_PREFIXES = ("aws", "ecs", "fargate")


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value)


def _frozen_map(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value or {})


@attrs.frozen
class Network:
    subnets: tuple[str, ...] = attrs.field(converter=_tuple)
    security_groups: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    assign_public_ip: bool = False


@attrs.frozen
class Instances:
    """The launch template shared by all pools."""

    ami: str
    instance_profile: str | None = None
    root_volume_gib: int = 30
    ecs_config: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, hash=False)
    tags: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, hash=False)
    key_name: str | None = None
    #: A cloud-init part of your own (script or ``#cloud-config``), run after ecsspot's.
    user_data: str | None = None
    #: IMDS PUT response hop limit. 1 keeps the instance role's credentials from containers in
    #: bridge mode (their requests take a second hop); 2 opts in to giving it to them.
    metadata_hop_limit: int = 1


@attrs.frozen
class InstanceType:
    type: str
    weight: int = 1


def _instance_types(value: Any) -> tuple[InstanceType, ...]:
    return tuple(v if isinstance(v, InstanceType) else InstanceType(v) for v in value)


@attrs.frozen
class Range:
    """A minimum and an optional maximum (AWS's ``VCpuCountRequest``, ``MemoryMiBRequest``)."""

    min: int
    max: int | None = None


#: Values AWS accepts (botocore autoscaling model: CpuManufacturer, InstanceGeneration,
#: BurstablePerformance/BareMetal/LocalStorage, LocalStorageType).
CPU_MANUFACTURERS = ("intel", "amd", "amazon-web-services", "apple")
INSTANCE_GENERATIONS = ("current", "previous")
INCLUSION = ("included", "excluded", "required")
LOCAL_STORAGE_TYPES = ("hdd", "ssd")
#: AllowedInstanceTypes / ExcludedInstanceTypes: up to 400 names of 1..30 characters, ``*`` a wildcard.
MAX_TYPE_PATTERNS = 400
_TYPE_PATTERN = re.compile(r"[a-zA-Z0-9.*-]{1,30}")


@attrs.frozen
class InstanceRequirements:
    """Attribute-based instance type selection: AWS's ``InstanceRequirements`` of a mixed
    instances policy's override, in the spec's words. Defaults are AWS's."""

    vcpu: Range
    memory_mib: Range
    cpu_manufacturers: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    instance_generations: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    burstable_performance: str = "excluded"
    bare_metal: str = "excluded"
    local_storage: str = "included"
    local_storage_types: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: Names or patterns (``m5a.*``, ``c5*``): only these are considered. Not with excluded ones.
    allowed_instance_types: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    excluded_instance_types: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: Price protection (percentages); AWS's own defaults apply when unset.
    spot_max_price_percentage_over_lowest_price: int | None = None
    max_spot_price_as_percentage_of_optimal_on_demand_price: int | None = None
    on_demand_max_price_percentage_over_lowest_price: int | None = None

    def to_api(self) -> dict[str, Any]:
        """The ``InstanceRequirements`` structure (autoscaling and ec2 spell it alike)."""
        out: dict[str, Any] = {
            "VCpuCount": _range_api(self.vcpu),
            "MemoryMiB": _range_api(self.memory_mib),
            "BurstablePerformance": self.burstable_performance,
            "BareMetal": self.bare_metal,
            "LocalStorage": self.local_storage,
        }
        for key, value in (
            ("CpuManufacturers", self.cpu_manufacturers),
            ("InstanceGenerations", self.instance_generations),
            ("LocalStorageTypes", self.local_storage_types),
            ("AllowedInstanceTypes", self.allowed_instance_types),
            ("ExcludedInstanceTypes", self.excluded_instance_types),
        ):
            if value:
                out[key] = list(value)
        for key, number in (
            ("SpotMaxPricePercentageOverLowestPrice", self.spot_max_price_percentage_over_lowest_price),
            ("MaxSpotPriceAsPercentageOfOptimalOnDemandPrice", self.max_spot_price_as_percentage_of_optimal_on_demand_price),
            ("OnDemandMaxPricePercentageOverLowestPrice", self.on_demand_max_price_percentage_over_lowest_price),
        ):
            if number is not None:
                out[key] = number
        return out


def _range_api(r: Range) -> dict[str, int]:
    return {"Min": r.min} if r.max is None else {"Min": r.min, "Max": r.max}


@attrs.frozen
class ManagedScaling:
    target_capacity: int = 100
    minimum_scaling_step_size: int = 1
    maximum_scaling_step_size: int = 10_000
    instance_warmup_period: int = 300


@attrs.frozen
class Pool:
    """One capacity provider over one Auto Scaling group."""

    name: str
    max_size: int
    min_size: int = 0
    instance_types: tuple[InstanceType, ...] = attrs.field(default=(), converter=_instance_types)
    #: Instead of ``instance_types``: the attributes the types must have; Auto Scaling picks
    #: every type that has them, new ones included.
    instance_requirements: InstanceRequirements | None = None
    on_demand_base_capacity: int = 0
    #: AWS's default is 100 (all on-demand); spot pools say 0.
    on_demand_percentage_above_base: int = 100
    spot_allocation_strategy: str = "price-capacity-optimized"
    #: AWS's default: ``prioritized`` (the list's order), ``lowest-price`` with instance requirements.
    on_demand_allocation_strategy: str = attrs.field(
        default=attrs.Factory(lambda self: "prioritized" if self.instance_requirements is None else "lowest-price", takes_self=True)
    )
    #: Defaults to on whenever the pool may run spot instances.
    capacity_rebalance: bool = attrs.field(
        default=attrs.Factory(lambda self: self.on_demand_percentage_above_base < 100, takes_self=True)
    )
    managed_scaling: ManagedScaling | None = attrs.field(factory=ManagedScaling)
    managed_termination_protection: bool = True
    managed_draining: bool = True
    #: Name of the Auto Scaling group; default ``<cluster>-<pool>``. Changing it replaces the
    #: capacity provider (its ASG link is immutable on AWS).
    asg_name: str | None = None

    @property
    def has_spot(self) -> bool:
        """Whether any instance of this pool can be spot."""
        return self.on_demand_percentage_above_base < 100

    @property
    def all_spot(self) -> bool:
        return self.on_demand_percentage_above_base == 0 and self.on_demand_base_capacity == 0


@attrs.frozen
class StrategyItem:
    pool: str
    base: int = 0
    weight: int = 1


@attrs.frozen
class Drain:
    #: Spot warning → instance gone is 120 s; keep a margin for the drain's own calls.
    deadline_seconds: int = 110
    #: Heartbeat timeout of ecsspot's terminate lifecycle hook (AWS allows 30..7200).
    lifecycle_timeout_seconds: int = 600


@attrs.frozen
class Refresh:
    ami_parameter: str | None = None
    #: A count (``1``) or a percentage of the pool (``"25%"``).
    batch_size: int | str = 1
    min_healthy_percent: int = 90
    #: How long new instances may take to become ACTIVE container instances before rollback.
    timeout_seconds: int = 600


@attrs.frozen
class Protection:
    """The protection reconciler (:mod:`ecsspot.protection`)."""

    #: How long an instance runs only daemon tasks (or none) before its scale-in protection is
    #: removed: a duration like ``10m`` (30s..24h).
    idle_after: str = "10m"
    #: Whether the refresh Lambda's scheduled tick applies the decisions (else only
    #: ``ecsspot protection --apply`` does).
    on_schedule: bool = False


@attrs.frozen
class Watchdog:
    """The drain watchdog (:mod:`ecsspot.watchdog`)."""

    #: How long a container instance may stay DRAINING before it is reported: a duration like
    #: ``1h`` (1m..47h; ECS managed draining gives up only after 48 h).
    drain_timeout: str = "1h"
    #: Whether a stuck instance is set back to ACTIVE (by the scheduled tick, or the CLI's
    #: ``--reactivate``), its reason recorded in the state table.
    reactivate: bool = False


@attrs.frozen
class Fallback:
    """The spot → on-demand fallback controller (:mod:`ecsspot.fallback`)."""

    #: Whether the refresh Lambda's scheduled tick runs it (``ecsspot fallback tick`` runs it anyway).
    enabled: bool = False
    #: How long a spot pool stays short of its desired capacity, with a spot launch failing
    #: meanwhile, before it launches on demand: a duration like ``5m`` (1m..6h).
    detect_after: str = "5m"
    #: How long no spot launch may fail before the pool goes back to spot (1m..24h): the
    #: hysteresis that keeps a blinking spot market from flapping the pool.
    cooldown: str = "15m"
    #: Capacity units of a pool that may run on demand while it falls back (the raised
    #: OnDemandBaseCapacity never goes above it); at least 1 when ``enabled``.
    max_on_demand: int = 0


@attrs.frozen
class ClusterSpec:
    cluster: str
    network: Network
    instances: Instances
    pools: tuple[Pool, ...] = attrs.field(converter=_tuple)
    region: str | None = None
    strategy: tuple[StrategyItem, ...] = attrs.field(default=(), converter=_tuple)
    target_groups: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    drain: Drain = attrs.field(factory=Drain)
    refresh: Refresh = attrs.field(factory=Refresh)
    protection: Protection = attrs.field(factory=Protection)
    watchdog: Watchdog = attrs.field(factory=Watchdog)
    fallback: Fallback = attrs.field(factory=Fallback)

    def pool(self, name: str) -> Pool:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def asg_name(self, pool: Pool) -> str:
        return pool.asg_name or f"{self.cluster}-{pool.name}"

    def capacity_provider_name(self, pool: Pool) -> str:
        return f"{self.cluster}-{pool.name}"

    @property
    def launch_template_name(self) -> str:
        return f"{self.cluster}-ecsspot"

    @property
    def table_name(self) -> str:
        return table_name(self.cluster)


def table_name(cluster: str) -> str:
    """The DynamoDB state table of a cluster (leases, progress, idempotency, settings)."""
    return f"ecsspot-{cluster}"


LIFECYCLE_HOOK_NAME = "ecsspot-drain"


def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration (``1m30s``) as the ECS agent reads it; None if malformed."""
    text = str(text).strip()
    if not _DURATION.fullmatch(text):
        return None
    unit = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * unit[u] for n, u in _DURATION_PART.findall(text))


def stop_timeout_seconds(spec: ClusterSpec) -> float:
    """The agent's container stop timeout for this spec (default 1m)."""
    value = spec.instances.ecs_config.get("ECS_CONTAINER_STOP_TIMEOUT", "1m")
    return parse_duration(value) or 60.0


def batch_count(batch_size: int | str, pool_size: int) -> int:
    """Instances per refresh batch for a pool of ``pool_size`` (at least one)."""
    if isinstance(batch_size, str):
        pct = int(batch_size.rstrip("%"))
        return max(1, (pool_size * pct) // 100)
    return max(1, batch_size)


# --- loading ---------------------------------------------------------------------------------
#
# The document is structured by one cattrs converter into the classes above, whose defaults are
# the only ones. cattrs collects every failure of a pass (detailed validation); each becomes a
# Problem naming its path. The rules (``check``) need a spec, so the failing parts are taken out
# (an optional field falls back to its default, a required one or a list item to a blank) and
# the document structured again, until it builds.


class _Index(int):
    """A list position in a document path (a mapping's key may be a number too)."""


#: A path in the document: mapping keys and list positions.
_Path = tuple[Any, ...]

_converter = cattrs.Converter(forbid_extra_keys=True)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def _string(value: Any, _: Any = str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_kind(value)}")
    return value


def _integer(value: Any, _: Any = int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, got {_kind(value)}")
    if not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"is out of range (AWS takes 32-bit integers, up to {MAX_INT})")
    return value


def _boolean(value: Any, _: Any = bool) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {_kind(value)}")
    return value


def _count_or_percent(value: Any, _: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f'must be a count or a percentage like "25%", got {_kind(value)}')
    return _integer(value) if isinstance(value, int) else value


def _managed_scaling(value: Any, _: Any) -> ManagedScaling | None:
    # `managed_scaling: false` turns it off; `true` takes every default.
    if value is False:
        return None
    if value is True or value is None:
        return ManagedScaling()
    return _converter.structure(value, ManagedScaling)


def _instance_type(value: Any, type_: Any) -> InstanceType:
    # A bare name is the common form: `m5.large` for `{type: m5.large}`.
    return InstanceType(value) if isinstance(value, str) else _structure_class(InstanceType)(value, type_)


def _string_map(value: Any, type_: Any) -> Mapping[str, str]:
    """``ecs_config`` and ``tags``: text values (YAML's `true` and numbers written back as text)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping, got {_kind(value)}")
    out: dict[str, str] = {}
    errors: list[Exception] = []
    for key, v in value.items():
        if isinstance(v, bool):
            v = "true" if v else "false"  # YAML reads `true` as a boolean; ecs.config wants text
        elif isinstance(v, int) and not -MAX_INT <= v <= MAX_INT:
            errors.append(_at(ValueError("is a number too large for a setting; quote it if it is text"), key))
            continue
        elif isinstance(v, int | float):
            v = str(v)
        if not isinstance(v, str):
            errors.append(_at(ValueError(f"must be a string, got {_kind(v)}"), key))
            continue
        out[str(key)] = v
    if errors:
        raise cattrs.ClassValidationError("While structuring a string map", errors, type_)
    return out


def _at(exc: Exception, key: Any) -> Exception:
    """``exc`` noted as the failure at ``key``, the way cattrs notes a class's attribute."""
    exc.__notes__ = [AttributeValidationNote(f"Structuring key {key!r}", key, str)]
    return exc


@functools.cache
def _structure_class(cls: type) -> Callable[[Any, Any], Any]:
    fields = {f.name for f in attrs.fields(cls)}
    structure: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, _converter, _cattrs_forbid_extra_keys=True)

    def hook(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a mapping, got {_kind(value)}")
        # A key written without a value (`region:`) takes the default; an unknown one is reported.
        return structure({k: v for k, v in value.items() if v is not None or k not in fields}, type_)

    return hook


def _list_of(type_: Any) -> Callable[[Any, Any], Any]:
    items = homogenous_tuple_structure_factory(type_, _converter)
    what = "a list of strings" if get_args(type_)[0] is str else "a list"

    def hook(value: Any, _: Any) -> Any:
        # cattrs would read a string (or a mapping's keys) as a list.
        if not isinstance(value, list | tuple):
            raise ValueError(f"must be {what}, got {_kind(value)}")
        return items(value, type_)

    return hook


_converter.register_structure_hook(str, _string)
def _is_tuple(type_: Any) -> bool:
    return get_origin(type_) is tuple


_converter.register_structure_hook(int, _integer)
_converter.register_structure_hook(bool, _boolean)
_converter.register_structure_hook_func(lambda t: t == int | str, _count_or_percent)
_converter.register_structure_hook_func(lambda t: t == ManagedScaling | None, _managed_scaling)
_converter.register_structure_hook_func(lambda t: t == Mapping[str, str], _string_map)
_converter.register_structure_hook(InstanceType, _instance_type)
_converter.register_structure_hook_factory(_is_tuple, _list_of)
_converter.register_structure_hook_factory(attrs.has, _structure_class)


def _failures(exc: BaseException, path: _Path = (), type_: Any = None) -> Iterator[tuple[BaseException, Any, _Path]]:
    """Every failure in cattrs's exception group, with the type wanted and its path."""
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            key = _Index(note.index) if isinstance(note, IterableValidationNote) else note.name
            yield from _failures(inner, (*path, key), note.type)
        for inner in without:
            yield from _failures(inner, path)
    else:
        yield exc, type_, path


def _shown_path(path: _Path) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, _Index) else (f".{_segment(key)}" if out else _segment(key))
    return out


def _problems(exc: BaseException, type_: Any, path: _Path) -> Iterator[tuple[Problem, _Path]]:
    """What one failure says, and the part of the document it is about."""
    if isinstance(exc, ForbiddenExtraKeysError):
        allowed = tuple(f.name for f in attrs.fields(exc.cl))
        for key in sorted(exc.extra_fields, key=str):
            hint = _closest(str(key)[:100], allowed)
            yield Problem(_shown_path((*path, key)), "unknown key" + (f" (did you mean {hint!r}?)" if hint else "")), (*path, key)
    elif isinstance(exc, KeyError):
        yield Problem(_shown_path(path), "is required"), path
    elif type(exc) is ValueError and exc.args:
        yield Problem(_shown_path(path), str(exc)), path
    else:
        yield Problem(_shown_path(path), cattrs.v.format_exception(exc, type_)), path


def _blank(type_: Any) -> Any:
    """What stands in for a missing required value or a broken list item while the rules run."""
    if attrs.has(type_) or type_ == Mapping[str, str]:
        return {}
    if get_origin(type_) is tuple:
        return []
    return {str: "", int: 0, bool: False}.get(type_)


def _without(document: Any, fixes: Mapping[_Path, tuple[Any, bool]]) -> Any:
    """The document with each broken value taken out: an optional field's key removed (its
    default applies), a missing required value or a list item (keeping later indices) blanked.

    Only the containers on the way to a fix are copied, once each: YAML aliases may make the
    document far larger than its text, and nothing else of it is walked."""
    copies: dict[_Path, Any] = {}

    def container(path: _Path) -> Any:
        if path not in copies:
            if path:
                parent = container(path[:-1])
                parent[path[-1]] = copies[path] = _shallow(parent[path[-1]])
            else:
                copies[path] = _shallow(document)
        return copies[path]

    for path, (type_, missing) in fixes.items():
        box, last = container(path[:-1]), path[-1]
        if missing or isinstance(box, list):
            box[last] = _blank(type_)
        else:
            box.pop(last, None)
    return copies.get((), document)


def _shallow(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else list(value)


def _read(raw: Any) -> tuple[ClusterSpec | None, list[Problem]]:
    """The spec the document describes, and every problem found building it."""
    if not isinstance(raw, Mapping):
        return None, [Problem("", f"must be a mapping, got {_kind(raw)}")]
    document: Any = raw
    problems: list[Problem] = []
    # Each pass takes out at least one value, and only a blank stand-in can fail again, one level
    # deeper: the passes are bounded by the depth of the classes.
    for _ in range(8):
        try:
            return _converter.structure(document, ClusterSpec), problems
        except cattrs.BaseValidationError as exc:
            failures = list(_failures(exc))
        seen = [p.path for p in problems]
        fixes: dict[_Path, tuple[Any, bool]] = {}
        for exc_, type_, path in failures:
            for problem, where in _problems(exc_, type_, path):
                # A later pass only meets what an earlier one took out: nothing below it again.
                if not any(_within(problem.path, s) for s in seen):
                    problems.append(problem)
                fixes[where] = (type_, isinstance(exc_, KeyError))
        if () in fixes:
            break
        document = _without(document, fixes)
    return None, problems


def _within(path: str, outer: str) -> bool:
    return path == outer or path.startswith((outer + ".", outer + "["))


def _closest(key: str, allowed: tuple[str, ...]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    return match[0] if match else None


def load_spec(source: str | os.PathLike[str] | Mapping[str, Any]) -> ClusterSpec:
    """Load and validate a spec from a YAML file path or a dict; raises SpecError listing every problem."""
    if isinstance(source, Mapping):
        return _build(source, None)
    where = os.fspath(source)
    return _build(_read_yaml(where), where)


def loads_spec(text: str | bytes, source: str = "<string>") -> ClusterSpec:
    """Load and validate a spec from YAML text (or its UTF-8 bytes)."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError([Problem("", _TOO_LARGE)], source=source)
    if isinstance(text, bytes):
        text = _utf8(text, source)
    return _build(_parse_yaml(text, source), source)


_TOO_LARGE = f"is larger than {MAX_SPEC_BYTES // 1024} KiB: not a spec (what one renders must fit in 16 KB of user data)"


def _parse_yaml(text: str, source: str) -> Any:
    import yaml  # PyYAML stays off the Lambda import path

    def fail(message: str) -> SpecError:
        return SpecError([Problem("", message)], source=source)

    class Loader(yaml.SafeLoader):
        """SafeLoader that stops at a nesting no spec has, before Python's recursion limit does (slowly)."""

        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.depth += 1
            try:
                if self.depth > MAX_SPEC_DEPTH:
                    raise RecursionError
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise fail(f"not a spec: YAML nested more than {MAX_SPEC_DEPTH} levels deep") from None
    except ValueError as exc:
        # PyYAML converts scalars with int()/datetime: a 5,000-digit number or a 13th month.
        reason = "a number is too long" if "digits" in str(exc) else " ".join(str(exc).split())
        raise fail(f"not valid YAML: {reason}") from None


def _yaml_problem(exc: Exception) -> str:
    """PyYAML's error on one line: where (line, column, 1-based) and what, without the source
    excerpt and caret it prints over several lines."""
    import yaml  # lazily, as the reader: the Lambda's import path never needs PyYAML
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        context = f" ({exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})" if exc.context and exc.context_mark else ""
        return f"{where}: {' '.join(str(exc.problem or 'cannot parse').split())}{context}"
    return " ".join(str(exc).split())


def _read_yaml(path: str) -> Any:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([Problem("", "file not found")], source=path) from None
    except OSError as exc:
        raise SpecError([Problem("", f"cannot read: {exc.strerror}")], source=path) from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError([Problem("", _TOO_LARGE)], source=path)
    return _parse_yaml(_utf8(data, path), path)


def _utf8(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem("", f"not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}): a spec is a YAML file")], source=source) from None


def _build(raw: Any, where: str | None) -> ClusterSpec:
    spec, problems = _read(raw)
    if spec is not None:
        # Rule checks on a partly broken spec would repeat what the type checks said; skip those paths.
        problems += [p for p in check(spec) if not any(_within(p.path, seen.path) for seen in problems)]
    if problems or spec is None:
        raise SpecError(_without_follow_ons(problems), source=where)
    return spec


_MEANT = re.compile(r"unknown key \(did you mean '([^']+)'\?\)")


def _without_follow_ons(problems: list[Problem]) -> list[Problem]:
    """A required key that an unknown key beside it was meant to be (``clustr:``) is said once, at
    the typo, not again as "cluster: is required"."""
    meant = set()
    for p in problems:
        match = _MEANT.fullmatch(p.message)
        if match:
            parent = p.path.rpartition(".")[0]
            meant.add(f"{parent}.{match[1]}" if parent else match[1])
    return [p for p in problems if not (p.message == "is required" and p.path in meant)]


def dump_spec(spec: ClusterSpec) -> dict[str, Any]:
    """The spec as plain data (every key explicit); ``load_spec(dump_spec(s)) == s``."""

    def pool(p: Pool) -> dict[str, Any]:
        d = attrs.asdict(p, recurse=True)
        d["instance_types"] = [t.type if t.weight == 1 else {"type": t.type, "weight": t.weight} for t in p.instance_types]
        d["managed_scaling"] = attrs.asdict(p.managed_scaling) if p.managed_scaling else False
        if p.asg_name is None:
            del d["asg_name"]
        # Written only when set: what apply records for a pool of types stays as it was.
        if p.instance_requirements is None:
            del d["instance_requirements"]
        else:
            d["instance_requirements"] = _requirements_dump(p.instance_requirements)
        return d

    out: dict[str, Any] = {"cluster": spec.cluster}
    if spec.region:
        out["region"] = spec.region
    out["network"] = {
        "subnets": list(spec.network.subnets),
        "security_groups": list(spec.network.security_groups),
        "assign_public_ip": spec.network.assign_public_ip,
    }
    inst = attrs.asdict(spec.instances)
    inst["ecs_config"] = dict(spec.instances.ecs_config)
    inst["tags"] = dict(spec.instances.tags)
    out["instances"] = {k: v for k, v in inst.items() if v is not None}
    out["pools"] = [pool(p) for p in spec.pools]
    out["strategy"] = [attrs.asdict(s) for s in spec.strategy]
    out["target_groups"] = list(spec.target_groups)
    out["drain"] = attrs.asdict(spec.drain)
    out["refresh"] = {k: v for k, v in attrs.asdict(spec.refresh).items() if v is not None}
    # Written only when set: the settings apply records (and plans against) stay as they were
    # for specs that do not use them.
    if spec.protection != Protection():
        out["protection"] = attrs.asdict(spec.protection)
    if spec.watchdog != Watchdog():
        out["watchdog"] = attrs.asdict(spec.watchdog)
    if spec.fallback != Fallback():
        out["fallback"] = attrs.asdict(spec.fallback)
    return out


def _requirements_dump(req: InstanceRequirements) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in attrs.fields(InstanceRequirements):
        value = getattr(req, field.name)
        if isinstance(value, Range):
            out[field.name] = {"min": value.min} if value.max is None else {"min": value.min, "max": value.max}
        elif isinstance(value, tuple):
            if value:
                out[field.name] = list(value)
        elif value is not None:
            out[field.name] = value
    return out


def dumps_spec(spec: ClusterSpec) -> str:
    """The spec as YAML text."""
    import yaml

    return yaml.safe_dump(dump_spec(spec), sort_keys=False)


# --- rules -----------------------------------------------------------------------------------


def validate(spec: ClusterSpec) -> ClusterSpec:
    """Raise SpecError listing every broken rule of a spec built in Python; return it unchanged."""
    problems = check(spec)
    if problems:
        raise SpecError(problems)
    return spec


def check(spec: ClusterSpec) -> list[Problem]:
    """Every rule a spec breaks, in document order."""
    out: list[Problem] = []

    def add(path: str, message: str) -> None:
        out.append(Problem(path, message))

    if not _NAME.fullmatch(spec.cluster or ""):
        add("cluster", f"must be 1-255 letters, digits, hyphens or underscores, got {_shown(spec.cluster)}")
    elif len(spec.launch_template_name) > MAX_LAUNCH_TEMPLATE_NAME:
        add("cluster", f"must be at most {MAX_LAUNCH_TEMPLATE_NAME - len('-ecsspot')} characters (the launch template <cluster>-ecsspot may have {MAX_LAUNCH_TEMPLATE_NAME}), got {len(spec.cluster)}: {_shown(spec.cluster)}")
    if spec.region is not None and not _REGION.fullmatch(spec.region):
        add("region", f"{_shown(spec.region)} is not an AWS region name")

    if not spec.network.subnets:
        add("network.subnets", "needs at least one subnet")
    _each(spec.network.subnets, "network.subnets", _SUBNET, "is not a subnet id (subnet-…)", add)
    _duplicates(spec.network.subnets, "network.subnets", add)
    if len(",".join(spec.network.subnets)) > MAX_VPC_ZONE_IDENTIFIER:
        add("network.subnets", f"too many: their ids joined by commas exceed the {MAX_VPC_ZONE_IDENTIFIER} characters AWS allows (VPCZoneIdentifier), got {len(spec.network.subnets)} ids in {len(','.join(spec.network.subnets))} characters")
    _each(spec.network.security_groups, "network.security_groups", _SECURITY_GROUP, "is not a security group id (sg-…)", add)
    if len(spec.network.security_groups) > MAX_SECURITY_GROUPS:
        add("network.security_groups", f"at most {MAX_SECURITY_GROUPS} security groups per network interface (the VPC quota's ceiling), got {len(spec.network.security_groups)}")

    inst = spec.instances
    if not (_SSM_AMI.fullmatch(inst.ami) or _AMI.fullmatch(inst.ami)):
        add("instances.ami", f"must be an AMI id (ami-…) or an SSM parameter (ssm:/aws/service/ecs/…), got {_shown(inst.ami)}")
    # gp3 volumes are 1..16384 GiB (EBS volume types, "Volume size").
    if not 1 <= inst.root_volume_gib <= 16384:
        add("instances.root_volume_gib", f"must be 1..16384 (the gp3 size range), got {inst.root_volume_gib}")
    if not 1 <= inst.metadata_hop_limit <= MAX_HOP_LIMIT:
        add("instances.metadata_hop_limit", f"must be 1..{MAX_HOP_LIMIT} (1 keeps the instance role from bridge-mode containers; 2 lets them reach it), got {inst.metadata_hop_limit}")
    if inst.instance_profile is not None and not _INSTANCE_PROFILE.fullmatch(inst.instance_profile):
        add("instances.instance_profile", f"must be an instance profile name (up to 128 of letters, digits and +=,.@_-) or its ARN, got {_shown(inst.instance_profile)}")
    if inst.key_name is not None and not 1 <= len(inst.key_name) <= 255:
        add("instances.key_name", f"must be 1..255 characters, got {len(inst.key_name)}: {_shown(inst.key_name)}")
    _check_ecs_config(inst.ecs_config, add)
    _check_user_data(spec, add)
    if len(inst.tags) > MAX_USER_TAGS:
        add("instances.tags", f"at most {MAX_USER_TAGS}: EC2 allows 50 tags per instance and ecsspot adds 3, got {len(inst.tags)}")
    for key, value in inst.tags.items():
        path = f"instances.tags.{_segment(key)}"
        if key.lower().startswith("aws:"):
            add(path, "the aws: prefix is reserved by AWS")
        elif key.startswith("ecsspot:") or key == "AmazonECSManaged":
            add(path, "is reserved for ecsspot's own tags")
        elif not 1 <= len(key) <= MAX_TAG_KEY:
            add(path, f"tag keys are 1..{MAX_TAG_KEY} characters, got {len(key)}")
        elif len(value) > MAX_TAG_VALUE:
            add(path, f"tag values are at most {MAX_TAG_VALUE} characters, got {len(value)}: {_shown(value)}")

    if not spec.pools:
        add("pools", "needs at least one pool")
    names: set[str] = set()
    asg_names: set[str] = set()
    for i, pool in enumerate(spec.pools):
        _check_pool(spec, pool, f"pools[{i}]", names, asg_names, add)

    known = {p.name for p in spec.pools}
    if len(spec.pools) > 20:
        add("pools", f"at most 20: a capacity provider strategy holds up to 20 capacity providers, got {len(spec.pools)}")
    with_base = [i for i, s in enumerate(spec.strategy) if s.base > 0]
    if len(with_base) > 1:
        add(f"strategy[{with_base[1]}].base", f"only one strategy item may have a base above 0, got {spec.strategy[with_base[1]].base} beside strategy[{with_base[0]}]'s {spec.strategy[with_base[0]].base}")
    seen: set[str] = set()
    for i, item in enumerate(spec.strategy):
        p = f"strategy[{i}]"
        if item.pool not in known:
            # The bad value itself, made inert and short: a typo is seen at once.
            add(f"{p}.pool", f"{_shown(item.pool)} names no pool (pools: {', '.join(sorted(known)) or 'none'})")
        if item.pool in seen:
            add(f"{p}.pool", f"{_shown(item.pool)} appears twice")
        seen.add(item.pool)
        if not 0 <= item.base <= 100_000:
            add(f"{p}.base", f"must be 0..100000, got {item.base}")
        if not 0 <= item.weight <= 1000:
            add(f"{p}.weight", f"must be 0..1000, got {item.weight}")
    if spec.strategy and all(s.weight == 0 for s in spec.strategy):
        add("strategy", "at least one item needs a weight above 0")

    _each(spec.target_groups, "target_groups", _TARGET_GROUP_ARN, "is not a target group ARN", add)
    if not 10 <= spec.drain.deadline_seconds <= 172_800:
        add("drain.deadline_seconds", f"must be 10..172800, got {spec.drain.deadline_seconds}")
    if not 30 <= spec.drain.lifecycle_timeout_seconds <= 7200:
        add("drain.lifecycle_timeout_seconds", f"must be 30..7200 (the lifecycle hook heartbeat timeout AWS allows), got {spec.drain.lifecycle_timeout_seconds}")

    ref = spec.refresh
    if ref.ami_parameter is not None and not _SSM_PARAMETER.fullmatch(ref.ami_parameter):
        add("refresh.ami_parameter", f"must be an SSM parameter name starting with / (letters, digits, _.-/), got {_shown(ref.ami_parameter)}")
    if isinstance(ref.batch_size, str):
        m = _PERCENT.fullmatch(ref.batch_size)
        if not m or not 1 <= int(m.group(1)) <= 100:
            add("refresh.batch_size", f'must be a count ≥ 1 or a percentage "1%".."100%", got {_shown(ref.batch_size)}')
    elif ref.batch_size < 1:
        add("refresh.batch_size", f'must be a count ≥ 1 or a percentage "1%".."100%", got {_shown(ref.batch_size)}')
    if not 0 <= ref.min_healthy_percent <= 100:
        add("refresh.min_healthy_percent", f"must be 0..100, got {ref.min_healthy_percent}")
    if not 60 <= ref.timeout_seconds <= 7200:
        add("refresh.timeout_seconds", f"must be 60..7200, got {ref.timeout_seconds}")
    _check_duration(spec.protection.idle_after, "protection.idle_after", 30, 86_400, "30s..24h", add)
    _check_duration(spec.watchdog.drain_timeout, "watchdog.drain_timeout", 60, 47 * 3600, "1m..47h (ECS managed draining gives up at 48h)", add)
    _check_fallback(spec, add)
    return out


def _check_fallback(spec: ClusterSpec, add: Callable[[str, str], None]) -> None:
    fb = spec.fallback
    _check_duration(fb.detect_after, "fallback.detect_after", 60, 6 * 3600, "1m..6h", add)
    _check_duration(fb.cooldown, "fallback.cooldown", 60, 86_400, "1m..24h", add)
    if not 0 <= fb.max_on_demand <= 100_000:
        add("fallback.max_on_demand", f"must be 0..100000 capacity units, got {fb.max_on_demand}")
    elif fb.enabled and fb.max_on_demand < 1:
        add("fallback.max_on_demand", "must be at least 1 when fallback.enabled (the capacity units a spot pool may run on demand)")
    if fb.enabled and spec.pools and not any(p.has_spot for p in spec.pools):
        add("fallback.enabled", "no pool can run spot instances (every on_demand_percentage_above_base is 100): nothing to fall back from")


def _check_duration(value: str, path: str, low: float, high: float, allowed: str, add: Callable[[str, str], None]) -> None:
    seconds = parse_duration(value) if len(value) <= 32 else None
    if seconds is None:
        add(path, f"{_shown(value)} is not a duration like 10m or 1h")
    elif not low <= seconds <= high:
        add(path, f"must be {allowed}, got {_shown(value)}")


def duration_seconds(value: str) -> float:
    """Seconds of a duration the spec's checks accepted (``10m``)."""
    seconds = parse_duration(value)
    if seconds is None:
        raise ValueError(f"not a duration: {value!r}")
    return seconds


def duration_text(seconds: float) -> str:
    """A duration as people read it in a reason: ``45 s``, ``10 min``, ``2.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _check_pool(spec: ClusterSpec, pool: Pool, p: str, names: set[str], asg_names: set[str], add: Callable[[str, str], None]) -> None:
    if not _NAME.fullmatch(pool.name or ""):
        add(f"{p}.name", f"must be letters, digits, hyphens or underscores, got {_shown(pool.name)}")
    elif len(spec.capacity_provider_name(pool)) > 255:
        add(f"{p}.name", f"too long: the capacity provider <cluster>-<pool> may have 255 characters, got {len(spec.capacity_provider_name(pool))}")
    elif pool.name in names:
        add(f"{p}.name", f"{_shown(pool.name)} is used by another pool")
    names.add(pool.name)
    cp_name = spec.capacity_provider_name(pool)
    if pool.name and cp_name.lower().startswith(_RESERVED_CP_PREFIXES):
        add(f"{p}.name", f"capacity provider name {_shown(cp_name)} may not start with aws, ecs or fargate")
    asg = spec.asg_name(pool)
    if asg in asg_names:
        add(f"{p}.asg_name", f"Auto Scaling group {_shown(asg)} is used by another pool")
    asg_names.add(asg)
    if pool.asg_name is not None and not _ASG_NAME.fullmatch(pool.asg_name):
        add(f"{p}.asg_name", f"{_shown(pool.asg_name)} is not a valid Auto Scaling group name")
    if pool.min_size < 0:
        add(f"{p}.min_size", f"must be ≥ 0, got {pool.min_size}")
    if pool.max_size < 0:
        add(f"{p}.max_size", f"must be ≥ 0, got {pool.max_size}")
    if pool.asg_name is None and pool.name and len(asg) > 255:
        add(f"{p}.name", f"too long: the Auto Scaling group <cluster>-<pool> may have 255 characters, got {len(asg)}")
    if pool.min_size > pool.max_size >= 0:
        add(f"{p}.min_size", f"must be ≤ max_size ({pool.max_size}), got {pool.min_size}")
    if pool.instance_requirements is not None:
        _check_requirements(pool, pool.instance_requirements, f"{p}.instance_requirements", add)
    elif not pool.instance_types:
        add(f"{p}.instance_types", "needs at least one instance type (or instance_requirements)")
    elif len(pool.instance_types) > MAX_INSTANCE_TYPES:
        add(f"{p}.instance_types", f"at most {MAX_INSTANCE_TYPES} instance types per Auto Scaling group, got {len(pool.instance_types)}")
    seen: set[str] = set()
    for j, it in enumerate(pool.instance_types):
        if not (len(it.type) <= 64 and _INSTANCE_TYPE.fullmatch(it.type)):
            add(f"{p}.instance_types[{j}]", f"{_shown(it.type)} is not an instance type (like m5.large)")
        elif it.type in seen:
            add(f"{p}.instance_types[{j}]", f"{_shown(it.type)} is listed twice")
        seen.add(it.type)
        if not 1 <= it.weight <= 999:
            add(f"{p}.instance_types[{j}].weight", f"must be 1..999, got {it.weight}")
    if pool.on_demand_base_capacity < 0:
        add(f"{p}.on_demand_base_capacity", f"must be ≥ 0, got {pool.on_demand_base_capacity}")
    if not 0 <= pool.on_demand_percentage_above_base <= 100:
        add(f"{p}.on_demand_percentage_above_base", f"must be 0..100, got {pool.on_demand_percentage_above_base}")
    if pool.spot_allocation_strategy not in SPOT_ALLOCATION_STRATEGIES:
        add(f"{p}.spot_allocation_strategy", f"must be one of {', '.join(SPOT_ALLOCATION_STRATEGIES)}, got {_shown(pool.spot_allocation_strategy)}")
    if pool.on_demand_allocation_strategy not in ON_DEMAND_ALLOCATION_STRATEGIES:
        add(f"{p}.on_demand_allocation_strategy", f"must be one of {', '.join(ON_DEMAND_ALLOCATION_STRATEGIES)}, got {_shown(pool.on_demand_allocation_strategy)}")
    ms = pool.managed_scaling
    if ms is not None:
        s = f"{p}.managed_scaling"
        if not 1 <= ms.target_capacity <= 100:
            add(f"{s}.target_capacity", f"must be 1..100, got {ms.target_capacity}")
        if not 1 <= ms.minimum_scaling_step_size <= 10_000:
            add(f"{s}.minimum_scaling_step_size", f"must be 1..10000, got {ms.minimum_scaling_step_size}")
        if not 1 <= ms.maximum_scaling_step_size <= 10_000:
            add(f"{s}.maximum_scaling_step_size", f"must be 1..10000, got {ms.maximum_scaling_step_size}")
        if ms.minimum_scaling_step_size > ms.maximum_scaling_step_size:
            add(f"{s}.minimum_scaling_step_size", f"must be ≤ maximum_scaling_step_size ({ms.maximum_scaling_step_size}), got {ms.minimum_scaling_step_size}")
        if not 0 <= ms.instance_warmup_period <= 10_000:
            add(f"{s}.instance_warmup_period", f"must be 0..10000, got {ms.instance_warmup_period}")
    if pool.managed_termination_protection and ms is None:
        add(f"{p}.managed_termination_protection", "requires managed_scaling (AWS rejects it otherwise)")


def _check_requirements(pool: Pool, req: InstanceRequirements, r: str, add: Callable[[str, str], None]) -> None:
    """AWS's rules for InstanceRequirements in a mixed instances policy (botocore autoscaling
    model, LaunchTemplateOverrides, InstanceRequirements and InstancesDistribution)."""
    if pool.instance_types:
        # "Specify the instance types that you want, or define your instance requirements
        # instead"; "If you specify InstanceRequirements, you can't specify InstanceType."
        add(r, "give instance_types or instance_requirements, not both (AWS takes a list of types or the requirements instead)")
    for name, rng in (("vcpu", req.vcpu), ("memory_mib", req.memory_mib)):
        # NullablePositiveInteger: 0 or more, 0 meaning no minimum.
        if rng.min < 0:
            add(f"{r}.{name}.min", f"must be ≥ 0, got {rng.min}")
        if rng.max is not None and rng.max < max(rng.min, 1):
            add(f"{r}.{name}.max", f"must be ≥ min ({rng.min}), got {rng.max}")
    for name, values, allowed in (
        ("cpu_manufacturers", req.cpu_manufacturers, CPU_MANUFACTURERS),
        ("instance_generations", req.instance_generations, INSTANCE_GENERATIONS),
        ("local_storage_types", req.local_storage_types, LOCAL_STORAGE_TYPES),
    ):
        for j, v in enumerate(values):
            if v not in allowed:
                add(f"{r}.{name}[{j}]", f"must be one of {', '.join(allowed)}, got {_shown(v)}")
        _duplicates(values, f"{r}.{name}", add)
    for name, value in (("burstable_performance", req.burstable_performance), ("bare_metal", req.bare_metal), ("local_storage", req.local_storage)):
        if value not in INCLUSION:
            add(f"{r}.{name}", f"must be one of {', '.join(INCLUSION)}, got {_shown(value)}")
    if req.local_storage_types and req.local_storage == "excluded":
        add(f"{r}.local_storage_types", "asks for a local storage type while local_storage is excluded")
    for name, patterns in (("allowed_instance_types", req.allowed_instance_types), ("excluded_instance_types", req.excluded_instance_types)):
        if len(patterns) > MAX_TYPE_PATTERNS:
            add(f"{r}.{name}", f"at most {MAX_TYPE_PATTERNS} entries, got {len(patterns)}")
        _each(patterns, f"{r}.{name}", _TYPE_PATTERN, "is not an instance type or pattern (1-30 of letters, digits, '.', '-', '*')", add)
        _duplicates(patterns, f"{r}.{name}", add)
    if req.allowed_instance_types and req.excluded_instance_types:
        # "If you specify ExcludedInstanceTypes, you can't specify AllowedInstanceTypes."
        add(f"{r}.excluded_instance_types", "cannot be given with allowed_instance_types (AWS takes one or the other)")
    prices = (
        ("spot_max_price_percentage_over_lowest_price", req.spot_max_price_percentage_over_lowest_price),
        ("max_spot_price_as_percentage_of_optimal_on_demand_price", req.max_spot_price_as_percentage_of_optimal_on_demand_price),
        ("on_demand_max_price_percentage_over_lowest_price", req.on_demand_max_price_percentage_over_lowest_price),
    )
    for name, number in prices:
        if number is not None and number < 0:
            add(f"{r}.{name}", f"must be ≥ 0, got {number}")
    if prices[0][1] is not None and prices[1][1] is not None:
        # "Only one of SpotMaxPricePercentageOverLowestPrice or
        # MaxSpotPriceAsPercentageOfOptimalOnDemandPrice can be specified."
        add(f"{r}.max_spot_price_as_percentage_of_optimal_on_demand_price", "cannot be given with spot_max_price_percentage_over_lowest_price (AWS takes one of the two)")
    p = r.rpartition(".")[0]
    if pool.spot_allocation_strategy == "capacity-optimized-prioritized":
        # "This is not a valid value for Auto Scaling groups that specify InstanceRequirements."
        add(f"{p}.spot_allocation_strategy", "capacity-optimized-prioritized needs a list of types in priority order; with instance_requirements use price-capacity-optimized, capacity-optimized or lowest-price")
    if pool.on_demand_allocation_strategy == "prioritized":
        # prioritized "cannot be used for groups that" specify InstanceRequirements.
        add(f"{p}.on_demand_allocation_strategy", "prioritized needs a list of types in priority order; with instance_requirements use lowest-price (the default)")


def _check_ecs_config(config: Mapping[str, str], add: Callable[[str, str], None]) -> None:
    for key, value in config.items():
        path = f"instances.ecs_config.{_segment(key)}"
        if not _ECS_KEY.fullmatch(key):
            add(path, "ecs.config keys are upper case letters, digits and underscores")
            continue
        if _CONTROL.search(value):
            add(path, "must be a single line without control characters (ecs.config is read line by line)")
            continue
        if key == "ECS_CLUSTER":
            add(path, "is set by ecsspot from `cluster`; remove it")
        elif key == "ECS_ENABLE_SPOT_INSTANCE_DRAINING" and value.strip().lower() != "true":
            add(path, f"ecsspot always enables spot instance draining; remove it (got {_shown(value)})")
        elif key in ("ECS_ENGINE_AUTH_DATA", "ECS_ENGINE_AUTH_TYPE") or _secret_key(key):
            add(
                path,
                "credentials must not go in user data (readable by anyone who can describe the launch "
                "template): keep registry credentials in Secrets Manager and reference them with the "
                "container definition's repositoryCredentials",
            )
        elif _secret_shape(value):
            add(path, f"holds {_secret_shape(value)}: credentials must not go in user data (readable by anyone who can describe the launch template)")
        elif key == "ECS_CONTAINER_STOP_TIMEOUT" and parse_duration(value) is None:
            add(path, f"{_shown(value)} is not a duration like 30s or 1m")
        elif key == "ECS_INSTANCE_ATTRIBUTES":
            _check_attributes(value, path, add)


def _check_attributes(value: str, path: str, add: Callable[[str, str], None]) -> None:
    try:
        attributes = json.loads(value)
    except (ValueError, RecursionError):
        attributes = None
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        add(path, f'must be a JSON object of strings, e.g. {{"team": "api"}}, got {_shown(value)}')
    elif "ecsspot.lifecycle" in attributes:
        add(path, "ecsspot.lifecycle is set by ecsspot at boot")
    else:
        # ECS refuses other attributes when the agent registers, and the instance never joins.
        for name, v in attributes.items():
            if not _ATTRIBUTE_NAME.fullmatch(name):
                add(path, f"attribute name {_shown(name)} must be 1-128 letters, digits, or - _ . / \\ (ECS attribute rules)")
            elif not _ATTRIBUTE_VALUE.fullmatch(v) or v != v.strip(" "):
                add(path, f"the value of {name} must be 1-128 letters, digits, spaces, or - _ . @ / \\ : without leading or trailing spaces (ECS attribute rules), got {_shown(v)}")


def _check_user_data(spec: ClusterSpec, add: Callable[[str, str], None]) -> None:
    from ecsspot import userdata

    extra = spec.instances.user_data
    if extra is not None:
        for n, line in enumerate(extra.splitlines(), 1):
            found = _secret_shape(line) or _secret_assignment(line)
            if found:
                add("instances.user_data", f"line {n} holds {found}: credentials must not go in user data (readable by anyone who can describe the launch template); fetch them at boot from Secrets Manager or SSM")
            if line.startswith(f"--{userdata.MIME_BOUNDARY}"):
                add("instances.user_data", f"line {n} is ecsspot's MIME boundary; it would split your part in two")
    if not _NAME.fullmatch(spec.cluster or "") or userdata.unrepresentable(spec.instances.ecs_config):
        return  # reported above; the script cannot be rendered to measure it
    try:
        size = len(userdata.render(spec.cluster, spec.instances.ecs_config, extra).encode("utf-8"))
    except ValueError:
        return  # each cause has its own problem above
    if size > MAX_USER_DATA_BYTES:
        add("instances.user_data" if extra else "instances.ecs_config", f"the rendered user data is {size} bytes; EC2 allows {MAX_USER_DATA_BYTES} (16 KB before base64)")


def _secret_key(key: str) -> bool:
    """Whether an ecs.config key names a secret (DB_PASS, API_KEY, …)."""
    if key in _NOT_SECRET_KEYS:
        return False
    return bool(_SECRET_KEY_PARTS.search(key)) or any(word in _SECRET_KEY_WORDS for word in key.split("_"))


def _secret_shape(text: str) -> str | None:
    """What kind of credential a value is shaped like (never the value itself), or None."""
    if _AWS_ACCESS_KEY_ID.search(text):
        return "an AWS access key id (AKIA…/ASIA…)"
    if _PEM_PRIVATE_KEY.search(text):
        return "a PEM private key"
    return None


def _secret_assignment(line: str) -> str | None:
    m = _SECRET_ASSIGNMENT.search(line)
    return f"a literal value for {_shown(m.group('name'))}" if m else None


def _segment(key: object) -> str:
    """A mapping key as a path segment: as written when plain, else repr'd (and cut short)."""
    text = str(key)
    return text if re.fullmatch(r"[\w.:/@+=-]{1,64}", text) else _shown(text)


def _shown(value: object) -> str:
    """A value for a message, made inert and short by the one rule every error line uses
    (:func:`ecsspot.ami.inert`: ascii escapes, at most 80 characters)."""
    from ecsspot.ami import inert  # lazily: spec's own import stays light

    return inert(value) if isinstance(value, str) else ascii(value)


def _each(values: tuple[str, ...], path: str, pattern: re.Pattern[str], message: str, add: Callable[[str, str], None]) -> None:
    for i, v in enumerate(values):
        if not pattern.fullmatch(v):
            add(f"{path}[{i}]", f"{_shown(v)} {message}")


def _duplicates(values: tuple[str, ...], path: str, add: Callable[[str, str], None]) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            add(f"{path}[{i}]", f"{v!r} is listed twice")
        seen.add(v)
