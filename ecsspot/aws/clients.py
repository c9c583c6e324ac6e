"""Client construction shared by both drivers: region, profile, endpoint, retries, timeouts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
from botocore.config import Config

#: Services ecsspot talks to; clients are created lazily, one per service.
SERVICES = ("ecs", "autoscaling", "ec2", "elbv2", "dynamodb", "ssm")


def default_config() -> Config:
    """botocore's standard retry mode (jittered backoff, throttling retried) and bounded timeouts."""
    return Config(
        retries={"mode": "standard", "max_attempts": 8},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="ecsspot",
    )


@attrs.frozen
class ClientOptions:
    """How to reach AWS; shared by the boto3 and aiobotocore drivers."""

    region: str | None = None
    profile: str | None = None
    #: Overrides every service's endpoint; boto3's own AWS_ENDPOINT_URL works when this is None.
    endpoint_url: str | None = None
    config: Config = attrs.field(factory=default_config)
    #: botocore event handlers, e.g. ("before-call", counter) for benchmarks and tests.
    event_handlers: Sequence[tuple[str, Callable[..., Any]]] = ()

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"config": self.config}
        if self.region:
            kwargs["region_name"] = self.region
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return kwargs
