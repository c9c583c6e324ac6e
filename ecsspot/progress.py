"""The saved progress of a rolling refresh: typed classes and the one converter to and from JSON.

The progress lives as a JSON document in the cluster's state table (``refresh``/``progress``) and
outlives ecsspot versions: a refresh started by one release is resumed by the next, and the
refresh Lambda and the CLI may run different releases meanwhile. So the converter ignores keys it
does not know, gives defaults for keys older documents lack, and writes the same keys the
dict-based refresh wrote (a batch's removal steps stay flat: ``terminating``,
``terminating_desired_before``, ``rollback_drain_seconds``, …), which an older release reads too.

The classes are mutable (``attrs.define``): the refresh walks one document through its steps,
updating a pool's batch in place and saving after each step; frozen values would have to be
rebuilt from the root on every one of those updates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.strategies import configure_union_passthrough

from ecsspot import store
from ecsspot.aws.calls import Call
from ecsspot.errors import InputError
from ecsspot.spec import Refresh

Phase = Literal["template", "rolling", "rolling_back", "done", "rolled_back"]
PoolState = Literal["pending", "rolling", "done", "rolled_back"]
Step = Literal["scale_up", "wait_new", "drain", "terminate"]

#: Phases of a refresh under way (one that must be resumed, not started again).
ACTIVE_PHASES: tuple[Phase, ...] = ("template", "rolling", "rolling_back")


#: Where the progress document lives in the state table (``pk``, ``sk``): written by the refresh,
#: read by ``status``, the Terraform hook and ``plan`` (which explains an image a refresh rolled to).
STORED_AT = ("refresh", "progress")


def read_call(table: str) -> Call:
    """The read of the saved progress, to send in a batch with other calls (see :func:`from_answer`)."""
    return store.get_document_call(table, *STORED_AT)


def from_answer(answer: Mapping[str, Any] | None, table: str, *, strict: bool = True) -> RefreshProgress | None:
    """The progress in the answer to :func:`read_call`, or None when there is none: the one reader
    of the stored document. An unreadable one (not JSON, or fields this release cannot read) is an
    InputError naming the table when ``strict`` (the refresh, status); None otherwise (plan, which
    only uses it to explain a change)."""
    where = f"the saved refresh progress in table {table}"
    try:
        document = store.document_of(answer)
        return None if document is None else load(document, where=where)
    except (InputError, ValueError) as exc:  # ValueError: the stored text is not JSON
        if not strict:
            return None
        raise exc if isinstance(exc, InputError) else InputError(f"{where} is not readable: not JSON") from None


@attrs.define
class Original:
    """A pool's group sizes before the refresh (restored at the end)."""

    min: int
    max: int
    desired: int
    #: Capacity units counted when the refresh started; older documents lack it (then: desired).
    running: int = attrs.field()

    @running.default
    def _running(self) -> int:
        return self.desired


@attrs.define
class DrainRecord:
    """One instance's outcome of a batch's verified drain (kept for the report)."""

    instance_id: str
    status: str
    reason: str = ""


@attrs.define
class Removal:
    """Instances drained and then terminated with decrement: the drain's running time so far and,
    decided and saved before the calls, which instances we terminate and the group's desired
    capacity just before (so a repeat after a crash terminates none twice)."""

    drain_seconds: float = 0.0
    terminating: list[str] | None = None
    desired_before: int | None = None


@attrs.define
class Batch:
    """The batch a pool is replacing now."""

    old: list[str]
    desired: int
    max: int
    step: Step
    since: float
    fresh_before: list[str] = attrs.Factory(list)
    new: list[str] = attrs.Factory(list)
    drain: list[DrainRecord] = attrs.Factory(list)
    #: Removing the batch's old instances once their replacements serve.
    removal: Removal = attrs.Factory(Removal)
    #: Removing the batch's new instances when the refresh rolls back.
    rollback: Removal = attrs.Factory(Removal)


@attrs.define
class PoolProgress:
    pool: str
    asg: str
    original: Original
    state: PoolState
    old: list[str] = attrs.Factory(list)
    replaced: list[str] = attrs.Factory(list)
    #: Replacements of lost old instances that stand in for the next batch's new capacity.
    surplus: int = 0
    batch: Batch | None = None
    #: The template version the group used before (None: the refresh's ``previous_version``).
    previous_version: int | None = None
    failed_new: list[str] = attrs.Factory(list)


@attrs.define
class RefreshProgress:
    """One refresh's saved progress. Only ``phase`` and ``image_id`` are required: the rest has
    the defaults a document without it means (the spec's for ``batch_size`` and
    ``min_healthy_percent``)."""

    phase: Phase
    image_id: str
    id: str = ""
    cluster: str = ""
    batch_size: int | str = Refresh().batch_size
    min_healthy_percent: int = Refresh().min_healthy_percent
    pools: list[PoolProgress] = attrs.Factory(list)
    previous_version: int | None = None
    new_version: int | None = None
    template_id: str | None = None
    started_at: float | None = None
    updated_at: float | None = None
    reason: str = ""
    #: Old instances a rollback left DRAINING because they are going away for another reason.
    kept_draining: list[str] = attrs.Factory(list)


converter = cattrs.Converter(forbid_extra_keys=False)
configure_union_passthrough(int | str, converter)


def _is_literal(type_: object) -> bool:
    return get_origin(type_) is Literal


def _one_of(value: Any, type_: Any) -> Any:
    if value not in get_args(type_):
        raise ValueError(f"must be one of {', '.join(get_args(type_))}, got {value!r}")
    return value


def _exactly(kind: type) -> Any:
    """Values as they are, of ``kind``: cattrs would make ``"3"`` an int and ``7`` a string."""

    def hook(value: Any, _: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"expected {_NAMES[kind]}, got {type(value).__name__}")
        return value

    return hook


def _float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _strings(value: Any, _: Any) -> list[str]:
    # cattrs would take a string for a list of its characters.
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {type(value).__name__}")
    return list(value)


_NAMES = {str: "a string", int: "an integer"}
converter.register_structure_hook_func(_is_literal, _one_of)
converter.register_structure_hook(str, _exactly(str))
converter.register_structure_hook(int, _exactly(int))
converter.register_structure_hook(float, _float)
converter.register_structure_hook_func(lambda t: t == list[str], _strings)

#: How a batch's removals are stored: flat, under these keys, the rollback's with a prefix.
_REMOVALS = {"removal": "", "rollback": "rollback_"}
_REMOVAL_KEYS = {"drain_seconds": "drain_seconds", "terminating": "terminating", "desired_before": "terminating_desired_before"}
_batch_from_dict = make_dict_structure_fn(Batch, converter, _cattrs_forbid_extra_keys=False)
_batch_to_dict = make_dict_unstructure_fn(Batch, converter)
_removal_to_dict = make_dict_unstructure_fn(Removal, converter, _cattrs_omit_if_default=True)


def _structure_batch(value: Any, cls: type[Batch]) -> Batch:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    flat = dict(value)
    for field, prefix in _REMOVALS.items():
        flat[field] = {name: flat.pop(prefix + key) for name, key in _REMOVAL_KEYS.items() if prefix + key in flat}
    return _batch_from_dict(flat, cls)


def _unstructure_batch(batch: Batch) -> dict[str, Any]:
    flat = _batch_to_dict(batch)
    for field, prefix in _REMOVALS.items():
        del flat[field]
        # Only what a step has set, as before: older releases test for the key's presence.
        flat.update((prefix + _REMOVAL_KEYS[name], value) for name, value in _removal_to_dict(getattr(batch, field)).items())
    return flat


converter.register_structure_hook(Batch, _structure_batch)
converter.register_unstructure_hook(Batch, _unstructure_batch)


def _why(exc: BaseException, type_: Any) -> str:
    # Our hooks' ValueErrors say what was wrong; cattrs's own wording for the rest.
    if type(exc) is ValueError and exc.args:
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _stored_path(path: str) -> str:
    """A field's path as the document names it (``pools[0].batch.terminating``, not ``….removal.terminating``)."""
    for field, prefix in _REMOVALS.items():
        for name, key in _REMOVAL_KEYS.items():
            path = path.replace(f".batch.{field}.{name}", f".batch.{prefix}{key}")
    return path.lstrip(".")


def load(document: Mapping[str, Any], *, where: str = "refresh progress") -> RefreshProgress:
    """A saved document as a RefreshProgress; InputError naming every unreadable field."""
    if not isinstance(document, Mapping):
        raise InputError(f"{where} is not readable: expected an object, got {type(document).__name__}")
    try:
        return converter.structure(document, RefreshProgress)
    except cattrs.BaseValidationError as exc:
        problems = [f"{_stored_path(path)}: {message}" for message, _, path in (m.rpartition(" @ ") for m in cattrs.transform_error(exc, path="", format_exception=_why))]
        raise InputError(f"{where} is not readable: " + "; ".join(problems)) from None


def dump(progress: RefreshProgress) -> dict[str, Any]:
    """The JSON-able document (the stored shape, and what ``on_progress`` callbacks receive)."""
    result: dict[str, Any] = converter.unstructure(progress)
    return result


__all__ = ["ACTIVE_PHASES", "Batch", "DrainRecord", "Original", "PoolProgress", "RefreshProgress", "Removal", "converter", "dump", "load"]
