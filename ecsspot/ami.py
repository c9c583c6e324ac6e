"""Which AMI an instance boots: an ``ami-…`` id, or the id an SSM parameter holds.

The one way to resolve an AMI, used by plan, the refresh and the Terraform ``ami`` hook, so that all
three accept the same forms and say the same thing when the parameter is missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ecsspot.aws.calls import Call, Workflow, lookup
from ecsspot.errors import InputError

AMI_ID = re.compile(r"ami-[0-9a-zA-Z]{1,32}")
# SSM parameter names: a-zA-Z0-9_.- and / for the hierarchy, at most 1011 characters
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html, Name).
SSM_PARAMETER = re.compile(r"/[A-Za-z0-9_.\-/]{1,1010}")
SSM_PREFIX = "ssm:"
# GetParameter answers ParameterVersionNotFound for a ``name:version`` selector that does not exist
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html#API_GetParameter_Errors).
_PARAMETER_ABSENT = ("ParameterNotFound", "ParameterVersionNotFound")


def parameter_of(ami: str, field: str = "instances.ami") -> str | None:
    """The SSM parameter name of an ``ssm:/…`` AMI, None for an ``ami-…`` id; InputError otherwise."""
    if ami.startswith(SSM_PREFIX):
        name = ami[len(SSM_PREFIX) :]
        if not SSM_PARAMETER.fullmatch(name):
            raise InputError(f"{field}: {inert(ami)} must name an SSM parameter path (/, letters, digits, _.-), like ssm:/aws/service/ecs/…")
        return name
    if AMI_ID.fullmatch(ami):
        return None
    raise InputError(f"{field}: {inert(ami)} is neither an AMI id (ami-…) nor an SSM parameter (ssm:/…)")


def read(ami: str, field: str = "instances.ami") -> Call | None:
    """The SSM read an ``ssm:/param`` AMI needs (None for a literal ``ami-…``)."""
    name = parameter_of(ami, field)
    return None if name is None else lookup("ssm", "get_parameter", _PARAMETER_ABSENT, Name=name)


def image_from(ami: str, answer: Mapping[str, Any] | None, field: str = "instances.ami") -> str:
    """The AMI id, from ``ami`` itself or from the answer to :func:`read` (None: no such parameter)."""
    name = parameter_of(ami, field)
    if name is None:
        return ami
    if answer is None:
        raise InputError(f"{field}: SSM parameter {name} not found")
    return image_id_from_parameter(answer["Parameter"]["Value"], name, field)


def resolve(ami: str, field: str = "instances.ami") -> Workflow[str]:
    """An AMI id from ``ami-…`` or ``ssm:/param`` (plain id or the JSON ``…/recommended`` value)."""
    call = read(ami, field)
    return image_from(ami, (yield call) if call is not None else None, field)


def image_id_from_parameter(value: str, name: str = "", field: str = "instances.ami") -> str:
    """The image id in an SSM AMI parameter value: a plain id, or the JSON object of a
    ``…/recommended`` parameter (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/retrieve-ecs-optimized_AMI.html)."""
    value = value.strip()
    if AMI_ID.fullmatch(value):
        return value
    if value.startswith("{"):
        try:
            doc = json.loads(value)
        except ValueError:
            doc = {}
        if isinstance(doc, dict) and AMI_ID.fullmatch(str(doc.get("image_id", ""))):
            return str(doc["image_id"])
    raise InputError(f"{field}: SSM parameter {name or '?'} does not hold an AMI id: {inert(value)}")


def inert(value: str) -> str:
    """A hostile string made inert (ascii escapes) and short for an error line (the Terraform
    hooks render their query values with it too)."""
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."
