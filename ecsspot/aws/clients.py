"""Client construction shared by both drivers: region, profile, endpoint, retries, timeouts."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, get_args

import attrs
from botocore.config import Config

from ecsspot.aws.calls import Service

if TYPE_CHECKING:
    from botocore.loaders import Loader
    from botocore.session import Session

#: Services ecsspot talks to; clients are created lazily, one per service.
SERVICES: tuple[Service, ...] = get_args(Service)


@functools.cache
def shared_loader() -> Loader:
    """One botocore data loader per process. Each Session otherwise reads and parses the service
    models again (JSON, some hundreds of KB each): a Driver per Manager, per Lambda invocation or
    per test would pay for it every time. The loader caches what it has loaded on itself."""
    from botocore.loaders import create_loader

    return create_loader()


def botocore_session(profile: str | None = None) -> Session:
    """A new botocore Session (its own credentials and config) that shares :func:`shared_loader`."""
    from botocore.session import Session

    session = Session(profile=profile)
    session.register_component("data_loader", shared_loader())
    return session


#: Connections per client: a batch's calls to one service go out together (driver.MAX_CONCURRENCY).
POOL_CONNECTIONS = 128


def default_config() -> Config:
    """botocore's standard retry mode (jittered backoff, throttling retried) and bounded timeouts."""
    return Config(
        retries={"mode": "standard", "max_attempts": 8},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=POOL_CONNECTIONS,
        user_agent_extra="ecsspot",
    )


#: The interruption Lambda's budget: a spot warning leaves 120 s, and a call that cannot succeed
#: must fail early enough for the record to come back and be tried again inside that window.
LAMBDA_ATTEMPTS = 3
LAMBDA_CONNECT_TIMEOUT = 2.0
LAMBDA_READ_TIMEOUT = 5.0
#: botocore's standard mode sleeps at most ``base * 2**attempt`` (base 1 s, jittered) between tries.
_STANDARD_MAX_BACKOFF = 20.0


def lambda_config() -> Config:
    """Timeouts and attempts that fit the two-minute window (see :func:`worst_case_seconds`)."""
    return Config(
        retries={"mode": "standard", "max_attempts": LAMBDA_ATTEMPTS},
        connect_timeout=LAMBDA_CONNECT_TIMEOUT,
        read_timeout=LAMBDA_READ_TIMEOUT,
        max_pool_connections=POOL_CONNECTIONS,
        user_agent_extra="ecsspot-lambda",
    )


def config_option(config: Config, name: str) -> Any:
    """One option of a botocore Config as it was given (``retries``, ``read_timeout``…).

    Config keeps its options as instance attributes, set from its keyword arguments; the
    botocore stubs declare only the constructor, so the attributes are read from ``vars``.
    """
    return vars(config)[name]


def worst_case_seconds(config: Config) -> float:
    """How long one call can take to fail: every attempt timing out, plus the backoff between."""
    attempts = int((config_option(config, "retries") or {}).get("max_attempts", 3))
    per_attempt = float(config_option(config, "connect_timeout")) + float(config_option(config, "read_timeout"))
    backoff = sum(min(2.0**i, _STANDARD_MAX_BACKOFF) for i in range(attempts - 1))
    return attempts * per_attempt + backoff


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
