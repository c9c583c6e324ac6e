"""On-demand list prices for the savings report: a dated table, overridable.

AWS publishes on-demand prices on https://aws.amazon.com/ec2/pricing/on-demand/ and through the
Price List API, which needs an extra permission and answers from us-east-1 only; a report that
must work with the operator's read-only role uses this table instead. The figures are the
us-east-1, Linux, shared-tenancy list prices per hour as the authors knew them on
:data:`AS_OF`; other Regions and later price changes differ, so give your own with
``ecsspot savings --prices FILE`` (a map of instance type to USD per hour). Spot prices are never
taken from here: the report reads them from ``DescribeSpotPriceHistory``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ecsspot.errors import InputError

AS_OF = "2026-12-01"
SOURCE = f"us-east-1 Linux on-demand list prices as of {AS_OF} (ecsspot.prices)"

# USD per hour of the .large size; the other sizes scale with the vCPUs (xlarge 2x, 2xlarge 4x,
# 4xlarge 8x), as the published prices of these families do.
_LARGE = {
    "m5": 0.096,
    "m5a": 0.086,
    "m5d": 0.113,
    "m6i": 0.096,
    "m6a": 0.0864,
    "m7i": 0.1008,
    "m6g": 0.077,
    "m7g": 0.0816,
    "c5": 0.085,
    "c5a": 0.077,
    "c6i": 0.085,
    "c6a": 0.0765,
    "c7i": 0.08925,
    "c6g": 0.068,
    "c7g": 0.0725,
    "r5": 0.126,
    "r6i": 0.126,
    "r6g": 0.1008,
    "t3": 0.0832,
    "t3a": 0.0752,
}
_SIZES = {"large": 1, "xlarge": 2, "2xlarge": 4, "4xlarge": 8}

ON_DEMAND: dict[str, float] = {f"{family}.{size}": round(price * factor, 5) for family, price in _LARGE.items() for size, factor in _SIZES.items()}

#: An EC2 instance type name (``m5.large``, ``c7gn.16xlarge``, ``u-6tb1.metal``).
_TYPE = re.compile(r"[a-z][a-z0-9-]{0,30}\.[a-z0-9-]{1,30}")
#: No instance type costs more than this per hour on demand; a bigger figure is a typo.
_MAX_PRICE = 1000.0
_MAX_ENTRIES = 2000


def prices_from(document: Any, *, where: str = "prices") -> dict[str, float]:
    """Validated overrides: ``{instance type: USD per hour}``; every bad entry named in one error."""
    if not isinstance(document, Mapping):
        raise InputError(f"{where}: must be a map of instance type to USD per hour, got {type(document).__name__}")
    if len(document) > _MAX_ENTRIES:
        raise InputError(f"{where}: at most {_MAX_ENTRIES} instance types, got {len(document)}")
    problems, out = [], {}
    for name, value in document.items():
        if not isinstance(name, str) or not _TYPE.fullmatch(name):
            problems.append(f"{where}: {name!r} is not an instance type")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= _MAX_PRICE:
            problems.append(f"{where}.{name}: must be a price per hour above 0 and at most {_MAX_PRICE:.0f}, got {value!r}")
        else:
            out[name] = float(value)
    if problems:
        raise InputError("; ".join(problems))
    return out
