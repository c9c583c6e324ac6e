"""Terraform's external data source protocol, and the hooks ``ecsspot tf HOOK`` serves.

The protocol (https://registry.terraform.io/providers/hashicorp/external/latest/docs/data-sources/external):
Terraform runs ``ecsspot tf HOOK`` with the data source's ``query`` on stdin as **one JSON object
whose values are all strings**, and reads **one JSON object whose values are all strings** from
stdout. On any error the program writes one line on stderr (``ecsspot: error: tf HOOK: …``),
exits non-zero and writes nothing on stdout: Terraform shows that line and stops the plan.

The query is checked before anything else happens (and before any AWS call):

* stdin must be UTF-8 JSON holding one object (not empty, not an array, no duplicate keys), at
  most ``MAX_QUERY_BYTES`` long;
* every value must be a string (Terraform's ``query`` is a ``map(string)``; a number, boolean,
  null or nested object is an error naming the key);
* every key must be one the hook accepts, and every key it requires must be there and not
  empty (both errors name the keys). An optional key given as ``""`` counts as not given:
  Terraform can't leave a map entry out conditionally, and the external provider drops a null
  entry (2.3.1 sent it as ``""``).
* no key or value may hold a NUL character or a lone surrogate (JSON's ``"\\ud800"``): neither
  can be a file name, an AWS name or user data, and Python cannot even encode the latter;
* ``spec`` must name a regular file (a directory, FIFO or device is refused before it is
  opened: reading a FIFO would wait for a writer forever).

Output values are encoded as strings, always:

* booleans are ``"true"`` / ``"false"``;
* numbers (counts) are decimal integers, ``"3"``;
* lists are comma-separated with no spaces, ``"ES101,ES102"``; an empty list is ``""``. No item
  ever contains a comma (items are lint codes, spec paths and resource names ecsspot validates),
  so Terraform's ``split(",", …)`` reads them back; mind that ``split(",", "")`` is ``[""]``;
* something unknown or absent is ``""``.

Hooks (query keys → output keys; ``?`` marks an optional key, ``|`` alternative forms):

``ami``        {ami: ``ssm:/param`` or ``ami-…``}
               → ``image_id``, ``image_name``, ``source`` (``ssm:/param`` or ``literal``)
``user-data``  {spec: a spec file} | {cluster, ecs_config_json?, extra_user_data?}
               → ``user_data_base64``, ``sha256``, ``ecs_cluster``
``plan``       {spec} → ``has_changes``, ``create``, ``update``, ``replace``, ``delete``,
               ``warnings``, ``changes``, ``image_id``
``lint``       {spec} → ``count``, ``codes``, ``paths`` (no AWS call)
``status``     {cluster} → ``cluster``, ``exists``, ``instances``, ``spot``, ``on_demand``,
               ``draining``, ``pools``, and per pool ``pool_<pool>_spot``,
               ``pool_<pool>_on_demand``, ``pool_<pool>_desired``, ``pool_<pool>_draining``;
               ``refresh_in_progress``, ``refresh_phase``, ``refresh_image_id``

``ami`` accepts an SSM parameter holding a plain image id or the JSON ``…/recommended``
document, and an ``ami-…`` id as is;
``image_name`` comes from DescribeImages (``""`` when EC2 does not know the image).

``user-data`` renders exactly what ``ecsspot apply`` puts in the launch template (see
:mod:`ecsspot.userdata`): from a spec file, or inline from ``cluster`` plus
``ecs_config_json`` (a JSON object of strings: extra ``/etc/ecs/ecs.config`` lines; ``""``,
``"{}"`` and ``"null"`` mean none) and ``extra_user_data`` (a cloud-init part of your own). The
inline values are checked with the spec's own rules, so a registry credential in
``ecs_config_json`` is refused here as ``validate`` refuses it. ``sha256`` is the hex digest of
the rendered text (before base64).

``plan``'s ``changes`` lists ``action:resource:name`` items and ``warnings`` (like ``lint``'s
``codes``) the sorted unique lint codes. ``status`` names its per-pool keys after the pool as
written in the spec (``pool_on-demand_spot``); ``refresh_in_progress`` is ``"true"`` while a
rolling refresh is in one of its active phases, whose name ``refresh_phase`` gives (the last
phase, ``done`` or ``rolled_back``, once it has finished; ``""`` when there never was one).
A cluster that does not exist yet answers ``exists = "false"`` and zero counts rather than an
error, since Terraform reads data sources before it creates anything.

No hook writes secrets: credentials come from the usual boto3 chain (the CLI's ``--region``,
``--profile``, ``--endpoint-url`` and ``AWS_ENDPOINT_URL`` apply) and never reach the output.

This module is pure apart from the Manager a hook asks ``manager_factory`` for; the CLI command
only reads stdin and writes stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from ecsspot import ami as amis
from ecsspot.errors import InputError, QueryError

if TYPE_CHECKING:
    from ecsspot.aws.calls import Workflow
    from ecsspot.manager import Manager
    from ecsspot.progress import RefreshProgress
    from ecsspot.spec import ClusterSpec

__all__ = ["HOOKS", "Form", "Hook", "ManagerFactory", "check_query", "dumps_result", "encode_result", "encode_value", "parse_query", "run_hook"]

#: Builds a Manager for a hook that talks to AWS; the argument is the spec's ``region`` (or None).
ManagerFactory = Callable[[str | None], "Manager"]
HookFunction = Callable[[Mapping[str, str], ManagerFactory], Mapping[str, Any]]

#: Larger than any query that can be valid (user data is at most 16 KB, a path at most 4 KiB),
#: small enough that a runaway pipe is refused at once rather than parsed.
MAX_QUERY_BYTES = 1024 * 1024
_UNREPRESENTABLE = re.compile(r"[\x00\ud800-\udfff]")
_IMAGE_ABSENT = ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable")


# Typed converters: with the generic builtins themselves, the attrs plugin of mypy types the
# __init__ parameter as an unsolved Iterable[_T_co].
def _keys(keys: Iterable[str]) -> frozenset[str]:
    return frozenset(keys)


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@attrs.frozen
class Form:
    """One accepted shape of a hook's query: keys it must have and keys it may have."""

    required: frozenset[str] = attrs.field(converter=_keys)
    optional: frozenset[str] = attrs.field(default=frozenset(), converter=_keys)

    @property
    def keys(self) -> frozenset[str]:
        return self.required | self.optional

    def describe(self) -> str:
        return ", ".join([*sorted(self.required), *(f"{k}?" for k in sorted(self.optional))])


def _forms(forms: Iterable[Form]) -> tuple[Form, ...]:
    return tuple(forms)


@attrs.frozen
class Hook:
    """A Terraform hook: the query ``forms`` it accepts (a query matches exactly one) and its function."""

    name: str
    forms: tuple[Form, ...] = attrs.field(converter=_forms)
    function: HookFunction = attrs.field(hash=False, repr=False)
    #: Output keys every successful answer has (``status`` adds per-pool keys).
    outputs: tuple[str, ...] = attrs.field(converter=_strings)
    summary: str = ""

    @property
    def required(self) -> frozenset[str]:
        """Keys every form requires."""
        return frozenset.intersection(*(f.required for f in self.forms))

    @property
    def optional(self) -> frozenset[str]:
        """Keys some form accepts but not every form requires."""
        return self.keys - self.required

    @property
    def keys(self) -> frozenset[str]:
        """Every key some form accepts."""
        return frozenset.union(*(f.keys for f in self.forms))

    @property
    def optional_only(self) -> frozenset[str]:
        """Keys no form requires: given as ``""`` they count as not given."""
        return self.keys - frozenset.union(*(f.required for f in self.forms))

    def form_of(self, keys: Iterable[str]) -> Form:
        """The form a query with ``keys`` matches; QueryError naming unknown and missing keys."""
        given = set(keys)
        problems = []
        unknown = sorted(given - self.keys)
        if unknown:
            problems.append(f"unknown query key{_s(unknown)} {_names(unknown)} (accepted: {', '.join(sorted(self.keys))})")
        known = given & self.keys
        matching = [f for f in self.forms if f.required <= known and known <= f.keys]
        if len(matching) == 1:
            if problems:
                raise QueryError("; ".join(problems))
            return matching[0]
        if len(self.forms) == 1:
            missing = sorted(self.forms[0].required - known)
            problems.append(f"missing query key{_s(missing)} {_names(missing)}")
        else:
            alternatives = " or ".join(f"{{{f.describe()}}}" for f in self.forms)
            # Name the missing keys when the query started exactly one form; else say they clash.
            started = [f for f in self.forms if known & f.keys and known <= f.keys]
            if len(started) == 1:
                missing = sorted(started[0].required - known)
                problems.append(f"missing query key{_s(missing)} {_names(missing)} (the query takes {alternatives})")
            elif not known:
                problems.append(f"missing query keys: the query takes {alternatives}")
            else:
                problems.append(f"query keys {_names(sorted(known))} mix forms: the query takes exactly one of {alternatives}")
        raise QueryError("; ".join(problems))


# --- the protocol ----------------------------------------------------------------------------


def parse_query(data: str | bytes) -> dict[str, str]:
    """The query Terraform sent on stdin: one JSON object of strings; QueryError otherwise."""
    if len(data) > MAX_QUERY_BYTES:
        raise QueryError(f"stdin is larger than {MAX_QUERY_BYTES} bytes: not a Terraform query")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise QueryError(f"stdin is not UTF-8 text (byte {exc.start})") from None
    if not data.strip():
        raise QueryError("stdin is empty: expected one JSON object of strings")
    try:
        document = json.loads(data, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise QueryError(f"stdin JSON repeats the key {exc.args[0]!r}") from None
    except json.JSONDecodeError as exc:
        raise QueryError(f"stdin is not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise QueryError("stdin is not JSON: nested too deeply") from None
    return check_query(document)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def check_query(document: Any) -> dict[str, str]:
    """``document`` as a query: an object whose values are all strings; QueryError naming the rest."""
    if not isinstance(document, Mapping):
        raise QueryError(f"the query must be a JSON object of strings, got {_kind(document)}")
    bad = [f"{key!r} is {_kind(value)}" for key, value in document.items() if not isinstance(value, str)]
    if bad:
        raise QueryError(f"query values must be strings (Terraform's query is a map of strings): {'; '.join(bad)}")
    bad = [f"key {_show(k)}" for k in document if _UNREPRESENTABLE.search(str(k))]
    bad += [f"{_show(k)}" for k, v in document.items() if _UNREPRESENTABLE.search(v)]
    if bad:
        raise QueryError(f"query holds a NUL character or a lone surrogate: {', '.join(bad)}")
    return {str(k): v for k, v in document.items()}


def run_hook(name: str, query: Mapping[str, str], manager_factory: ManagerFactory) -> dict[str, str]:
    """Check ``query`` against hook ``name``, run it, and encode its answer as a map of strings."""
    hook = HOOKS.get(name)
    if hook is None:
        raise QueryError(f"unknown hook {name!r} (hooks: {', '.join(HOOKS)})")
    query = check_query(query)
    # An optional key given as "" is the same as no key: Terraform can't drop a map entry.
    given = {k: v for k, v in query.items() if v.strip() or k not in hook.optional_only}
    form = hook.form_of(given)
    empty = sorted(k for k in form.required if not given[k].strip())
    if empty:
        raise QueryError(f"query key{_s(empty)} {_names(empty)} must not be empty")
    return encode_result(hook.function(given, manager_factory))


def encode_value(value: Any) -> str:
    """One output value as the protocol wants it (see the module docstring)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        items = [encode_value(v) for v in value]
        clash = [i for i in items if "," in i]
        if clash:  # would not split back into the same list: a bug, not a user error
            raise ValueError(f"list item {clash[0]!r} contains a comma")
        return ",".join(items)
    raise TypeError(f"cannot encode {type(value).__name__} as a Terraform string")


def encode_result(result: Mapping[str, Any]) -> dict[str, str]:
    """A hook's answer with every value encoded as a string."""
    return {str(k): encode_value(v) for k, v in result.items()}


def dumps_result(result: Mapping[str, str]) -> str:
    """The one line of JSON written to stdout."""
    return json.dumps(dict(result), sort_keys=True)


# --- hooks -----------------------------------------------------------------------------------


def _ami(query: Mapping[str, str], manager_factory: ManagerFactory) -> dict[str, Any]:
    ami = query["ami"].strip()
    try:
        parameter = amis.parameter_of(ami, "ami")
    except InputError as exc:
        raise QueryError(str(exc)) from None
    image_id, image_name = manager_factory(None).run(_ami_workflow(ami))
    return {"image_id": image_id, "image_name": image_name, "source": "literal" if parameter is None else ami}


def _ami_workflow(ami: str) -> Workflow[tuple[str, str]]:
    """The image id (read from SSM for ``ssm:/…``) and its name ("" when EC2 does not know it)."""
    from ecsspot.aws.calls import lookup

    try:
        image_id = yield from amis.resolve(ami, "ami")
    except InputError as exc:
        raise QueryError(str(exc)) from None
    described = yield lookup("ec2", "describe_images", _IMAGE_ABSENT, ImageIds=[image_id])
    images = (described or {}).get("Images") or []
    return image_id, str(images[0].get("Name") or "") if images else ""


def _user_data(query: Mapping[str, str], manager_factory: ManagerFactory) -> dict[str, Any]:
    from ecsspot import userdata

    if "spec" in query:
        spec = _load(query["spec"])
        cluster, config, extra = spec.cluster, dict(spec.instances.ecs_config), spec.instances.user_data
    else:
        cluster = query["cluster"].strip()
        config = _ecs_config(query.get("ecs_config_json", ""))
        extra = query.get("extra_user_data") or None
        _check_inline(cluster, config, extra)
    text = userdata.render(cluster, config, extra)
    if _UNREPRESENTABLE.search(text):
        # Only a spec file can get here (the inline values are checked above); the spec
        # loader's own rules are the place to refuse it, this keeps the hook from crashing.
        raise QueryError(f"spec: {_show(query['spec'])}: instances.ecs_config or instances.user_data holds a NUL character or a lone surrogate")
    return {
        "user_data_base64": userdata.encode(text),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "ecs_cluster": cluster,
    }


def _ecs_config(raw: str) -> dict[str, str]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise QueryError(f"ecs_config_json repeats the key {_show(exc.args[0])}") from None
    except ValueError as exc:
        raise QueryError(f"ecs_config_json is not JSON: {getattr(exc, 'msg', exc)}") from None
    except RecursionError:
        raise QueryError("ecs_config_json is not JSON: nested too deeply") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise QueryError(f"ecs_config_json must be a JSON object of strings, got {_kind(value)}")
    bad = [f"{k!r} is {_kind(v)}" for k, v in value.items() if not isinstance(v, str)]
    if bad:
        raise QueryError(f"ecs_config_json values must be strings: {'; '.join(bad)}")
    bad = [_show(k) for k, v in value.items() if _UNREPRESENTABLE.search(k) or _UNREPRESENTABLE.search(v)]
    if bad:
        raise QueryError(f"ecs_config_json holds a NUL character or a lone surrogate: {', '.join(bad)}")
    return dict(value)


def _check_inline(cluster: str, config: Mapping[str, str], extra: str | None) -> None:
    """The spec's own rules for what the inline form gives (cluster name, ecs.config lines)."""
    from ecsspot.spec import ClusterSpec, Instances, Network, Pool, check

    # A minimal spec around the inline values: only its cluster and instances rules apply here.
    spec = ClusterSpec(
        cluster=cluster,
        network=Network(subnets=("subnet-0",)),
        instances=Instances(ami="ami-0", ecs_config=config, user_data=extra),
        pools=(Pool(name="pool", max_size=1, instance_types=("m5.large",)),),
    )
    renamed = {"instances.ecs_config": "ecs_config_json", "instances.user_data": "extra_user_data"}
    problems = []
    for p in check(spec):
        if p.path == "cluster":
            problems.append(f"cluster: {p.message}")
            continue
        for old, new in renamed.items():
            if p.path == old or p.path.startswith(old + "."):
                problems.append(f"{new + p.path[len(old):]}: {p.message}")
    if problems:
        raise QueryError("; ".join(problems))


def _plan(query: Mapping[str, str], manager_factory: ManagerFactory) -> dict[str, Any]:
    spec = _load(query["spec"])
    plan = manager_factory(spec.region).plan(spec)
    return {
        "has_changes": plan.has_changes,
        **{action: plan.summary.get(action, 0) for action in ("create", "update", "replace", "delete")},
        "warnings": sorted({w.code for w in plan.warnings}),
        "changes": [f"{c.action}:{c.resource}:{c.name}" for c in plan.changes],
        "image_id": plan.image_id,
    }


def _lint(query: Mapping[str, str], manager_factory: ManagerFactory) -> dict[str, Any]:
    from ecsspot.lint import lint

    warnings = lint(_load(query["spec"]))
    return {
        "count": len(warnings),
        "codes": sorted({w.code for w in warnings}),
        "paths": [w.path for w in warnings],
    }


def _status(query: Mapping[str, str], manager_factory: ManagerFactory) -> dict[str, Any]:
    from ecsspot.refresh import ACTIVE_PHASES

    cluster = query["cluster"].strip()
    _check_inline(cluster, {}, None)
    status, progress = manager_factory(None).run(_status_workflow(cluster))
    pools = status.pools if status is not None else ()
    out: dict[str, Any] = {
        "cluster": cluster,
        # Terraform reads data sources before it creates the cluster: not there yet is an answer.
        "exists": status is not None,
        "instances": len(status.instances) if status is not None else 0,
        "spot": sum(p.spot for p in pools),
        "on_demand": sum(p.on_demand for p in pools),
        "draining": sum(p.draining for p in pools),
        "pools": [p.pool or p.auto_scaling_group for p in pools],
    }
    for p in pools:
        key = f"pool_{p.pool or p.auto_scaling_group}"
        out.update(
            {f"{key}_spot": p.spot, f"{key}_on_demand": p.on_demand, f"{key}_desired": p.desired_capacity, f"{key}_draining": p.draining}
        )
    out["refresh_in_progress"] = progress is not None and progress.phase in ACTIVE_PHASES
    out["refresh_phase"] = progress.phase if progress is not None else ""
    out["refresh_image_id"] = progress.image_id if progress is not None else ""
    return out


def _status_workflow(cluster: str) -> Workflow[tuple[Any, RefreshProgress | None]]:
    """The cluster's Status (None when there is no such cluster) and its saved refresh progress."""
    from ecsspot.errors import NotFoundError
    from ecsspot.refresh import load_progress
    from ecsspot.status import status

    try:
        found = yield from status(cluster)
    except NotFoundError:
        return None, None
    progress = yield from load_progress(cluster)
    return found, progress


def _load(path: str) -> ClusterSpec:
    """The spec at ``path``; a path that is there but is no regular file is refused unopened."""
    import stat

    from ecsspot.spec import load_spec

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None  # the loader's own "file not found"
    except OSError as exc:
        raise QueryError(f"spec: {_show(path)}: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise QueryError(f"spec: {_show(path)} is {kind}, not a spec file")
    return load_spec(path)


HOOKS: Mapping[str, Hook] = MappingProxyType(
    {
        h.name: h
        for h in (
            Hook("ami", [Form({"ami"})], _ami, ("image_id", "image_name", "source"), "resolve an AMI id (ssm:/param or ami-…)"),
            Hook(
                "user-data",
                [Form({"spec"}), Form({"cluster"}, {"ecs_config_json", "extra_user_data"})],
                _user_data,
                ("user_data_base64", "sha256", "ecs_cluster"),
                "render the launch template user data (from a spec file, or inline)",
            ),
            Hook(
                "plan",
                [Form({"spec"})],
                _plan,
                ("has_changes", "create", "update", "replace", "delete", "warnings", "changes", "image_id"),
                "what `ecsspot apply` would change",
            ),
            Hook("lint", [Form({"spec"})], _lint, ("count", "codes", "paths"), "lint a spec file (no AWS call)"),
            Hook(
                "status",
                [Form({"cluster"})],
                _status,
                (
                    "cluster",
                    "exists",
                    "instances",
                    "spot",
                    "on_demand",
                    "draining",
                    "pools",
                    "refresh_in_progress",
                    "refresh_phase",
                    "refresh_image_id",
                ),
                "instance counts per pool and lifecycle, draining, refresh progress",
            ),
        )
    }
)


def _names(keys: Iterable[str]) -> str:
    return ", ".join(repr(k) for k in keys)


def _s(items: Iterable[Any]) -> str:
    return "" if len(list(items)) == 1 else "s"


#: A hostile string made inert and short for an error line: the one rendering ``ecsspot.ami`` uses.
_show = amis.inert


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
