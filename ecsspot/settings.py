"""The environment ecsspot reads, read once at an edge (the Lambda handlers, the CLI, a Manager).

The core never reads ``os.environ``: the edge builds :class:`Settings` with
:meth:`Settings.from_environ` and passes plain values on. Every variable is in :data:`VARIABLES`
(the README's Lambda section repeats it).

botocore's own variables (``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``,
``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``, credentials) are read by botocore; the CLI checks the
two retry ones itself (``ecsspot_cli.retries``) so a bad value gets one clear line.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ecsspot.errors import InputError

#: Name → what it does.
VARIABLES: dict[str, str] = {
    "ECSSPOT_CLUSTER": "the cluster for instances without an ecsspot:cluster tag, and the refresh Lambda's cluster",
    "ECSSPOT_TABLE": "optional check: the state table is always ecsspot-<cluster>; naming another is a configuration error",
    "ECSSPOT_REFRESH_ON_SCHEDULE": "true (default) or false: whether a scheduled tick may start a refresh when the AMI parameter moved",
    "ECSSPOT_ENDPOINT_URL": "send every AWS call of the Lambdas to this endpoint (testing); AWS_ENDPOINT_URL works too",
    "AWS_REGION": "the region when none is given (Lambda and the other SDKs set it; botocore reads only AWS_DEFAULT_REGION)",
}

_BOOLEANS = {"true": True, "false": False}


def aws_region(environ: Mapping[str, str]) -> str | None:
    """``AWS_REGION``, for the fronts that take the region from it (a Manager, the CLI)."""
    return environ.get("AWS_REGION", "").strip() or None


@attrs.frozen
class Settings:
    """What the environment says, checked."""

    cluster: str | None = None
    table: str | None = None
    refresh_on_schedule: bool = True
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Read and check :data:`VARIABLES`; an empty value counts as unset. A value that cannot
        work is an :class:`~ecsspot.errors.InputError` naming the variable."""

        def get(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        schedule = (get("ECSSPOT_REFRESH_ON_SCHEDULE") or "true").lower()
        if schedule not in _BOOLEANS:
            raise InputError(f"ECSSPOT_REFRESH_ON_SCHEDULE={schedule[:40]!r}: expected true or false")
        settings = cls(
            cluster=get("ECSSPOT_CLUSTER"),
            table=get("ECSSPOT_TABLE"),
            refresh_on_schedule=_BOOLEANS[schedule],
            endpoint_url=get("ECSSPOT_ENDPOINT_URL"),
            region=aws_region(environ),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse a configuration that cannot work, before handling anything."""
        from ecsspot.spec import table_name

        if self.table and self.cluster and self.table != table_name(self.cluster):
            raise InputError(f"ECSSPOT_TABLE={self.table} but cluster {self.cluster}'s state table is {table_name(self.cluster)}; unset it or fix it")
