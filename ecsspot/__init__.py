"""ecsspot: Amazon ECS on spot capacity without dropped requests.

Light on import: the public names below are loaded on first use (see ``_HOME``), so importing
a submodule (the Lambda's ``ecsspot.handlers``) costs only that submodule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ecsspot.errors import EcsspotError, SpecError
    from ecsspot.manager import AsyncManager, Manager
    from ecsspot.spec import (
        ClusterSpec,
        InstanceRequirements,
        Instances,
        InstanceType,
        Network,
        Pool,
        StrategyItem,
        dump_spec,
        load_spec,
        loads_spec,
    )

__all__ = [
    "AsyncManager",
    "ClusterSpec",
    "EcsspotError",
    "InstanceRequirements",
    "InstanceType",
    "Instances",
    "Manager",
    "Network",
    "Pool",
    "SpecError",
    "StrategyItem",
    "dump_spec",
    "load_spec",
    "loads_spec",
]

#: Where each public name lives. Imported on first use: the Lambda handlers import
#: ``ecsspot.handlers`` (and so this package) on every cold start, and need no spec reader
#: (cattrs) or boto3 (the managers) until an event asks for them.
_HOME = {
    "AsyncManager": "manager",
    "Manager": "manager",
    "EcsspotError": "errors",
    "SpecError": "errors",
    **dict.fromkeys(("ClusterSpec", "InstanceRequirements", "Instances", "InstanceType", "Network", "Pool", "StrategyItem", "dump_spec", "load_spec", "loads_spec"), "spec"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'ecsspot' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"ecsspot.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
