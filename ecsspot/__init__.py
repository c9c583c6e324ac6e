"""ecsspot: Amazon ECS on spot capacity without dropped requests.

Light on import: the Lambda handlers import submodules directly, never this package's extras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from ecsspot.errors import EcsspotError, SpecError
from ecsspot.spec import (
    ClusterSpec,
    Instances,
    InstanceType,
    Network,
    Pool,
    StrategyItem,
    dump_spec,
    load_spec,
    loads_spec,
)

if TYPE_CHECKING:
    from ecsspot.manager import AsyncManager, Manager

__all__ = [
    "AsyncManager",
    "ClusterSpec",
    "EcsspotError",
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


def __getattr__(name: str) -> Any:
    # The managers pull in boto3; import them on first use so `import ecsspot.events` stays cheap.
    if name in ("Manager", "AsyncManager"):
        from ecsspot import manager

        return getattr(manager, name)
    raise AttributeError(f"module 'ecsspot' has no attribute {name!r}")
