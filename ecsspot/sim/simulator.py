"""The simulator's public face: a context manager over moto with the behaviour layer on top."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from ecsspot.sim.eventbridge import Handler, Invocation
from ecsspot.sim.seam import Seam
from ecsspot.sim.spot import SPOT
from ecsspot.sim.traffic import TrafficStats
from ecsspot.sim.world import Record, SimClock, Timings, World

#: moto's fake credentials; any value works against moto.
_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_session_token": "testing"}


class Simulator:
    """AWS behaviour over moto on a virtual clock.

    ``server=False`` runs moto in-process (``moto.mock_aws``); ``server=True`` also starts a
    ``ThreadedMotoServer`` on a free 127.0.0.1 port (:attr:`endpoint_url`) for the CLI and
    aiobotocore. Both share moto's global backends, which the simulator drives directly.
    """

    def __init__(
        self,
        region: str = "us-east-1",
        seed: int = 0,
        *,
        server: bool = False,
        port: int = 0,
        timings: Timings | None = None,
        managed_scaling: bool = False,
        protection_keeps_daemon_only: bool = False,
    ) -> None:
        self.region = region
        self.seed = seed
        self.server = server
        #: The server's port (0: a free one).
        self.port = port
        self.timings = timings or Timings()
        #: Simulate ECS cluster auto scaling (capacity providers' managed scaling and managed
        #: termination protection); off by default so hand-sized groups stay as they are.
        self.managed_scaling = managed_scaling
        #: Managed termination protection as aws/containers-roadmap#2814 reports it: never
        #: released from instances running only daemon tasks (see ecsspot.sim.capacity).
        self.protection_keeps_daemon_only = protection_keeps_daemon_only
        self.endpoint_url: str | None = None
        self._world: World | None = None
        self._seam: Seam | None = None
        self._mock: Any = None
        self._server: Any = None
        self._clients: dict[str, Any] = {}

    # lifecycle
    def __enter__(self) -> Simulator:
        from moto import mock_aws
        from moto.moto_api._internal import mock_random

        self._mock = mock_aws()
        self._mock.start()
        try:
            self._world = World(
                region=self.region,
                seed=self.seed,
                timings=self.timings,
                managed_scaling=self.managed_scaling,
                protection_keeps_daemon_only=self.protection_keeps_daemon_only,
            )
            # Before the backends are built: the seam makes building them cheaper.
            self._seam = Seam(self._world)
            self._seam.install()
            # moto's ids (instances, ARNs) come from its own random source: seed it too, once the
            # backends exist (a reset creates some eagerly, drawing from it, others lazily).
            for backend in (self._world.ec2, self._world.asg, self._world.ecs, self._world.elbv2, self._world.eventbridge):
                if backend is None:
                    raise RuntimeError("a moto backend the simulator needs is missing")
            mock_random.seed(self.seed)
            if self.server:
                from moto.server import ThreadedMotoServer

                self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
                self._server.start()
                host, port = self._server.get_host_and_port()
                self.endpoint_url = f"http://{host}:{port}"
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._world is not None:
            self._world.close()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._mock is not None:
            self._mock.stop()  # resets every backend, the seam's lean way
            self._mock = None
        if self._seam is not None:
            self._seam.remove()
            self._seam = None
        self.endpoint_url = None
        self._clients.clear()

    @property
    def world(self) -> World:
        if self._world is None:
            raise RuntimeError("use the Simulator as a context manager")
        return self._world

    # clients
    def client(self, service: str) -> Any:
        """A boto3 client for this simulator (over HTTP in server mode), made once per service."""
        import boto3

        if service not in self._clients:
            # boto3's stubs overload client() per literal service name; callers name any service.
            make_client: Any = boto3.client
            self._clients[service] = make_client(service, **self.client_kwargs())
        return self._clients[service]

    def client_kwargs(self) -> dict[str, Any]:
        """Region, fake credentials and, in server mode, the endpoint: for boto3 or aiobotocore."""
        kwargs: dict[str, Any] = {"region_name": self.region, **_CREDENTIALS}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return kwargs

    def environ(self) -> dict[str, str]:
        """Environment variables that point a subprocess (the CLI) at this simulator."""
        env = {
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": _CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": _CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": _CREDENTIALS["aws_session_token"],
        }
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return {**os.environ, **env}

    # time
    @property
    def clock(self) -> SimClock:
        """A FakeClock: sleeping on it (sync or async) runs the world forward."""
        return self.world.clock

    def now(self) -> float:
        return self.world.now()

    def advance(self, seconds: float, *, settle: bool = True) -> None:
        """Run the world ``seconds`` of virtual time forward (0 only delivers queued events);
        with ``settle``, until every Lambda invocation started meanwhile has finished, else
        exactly ``seconds`` (see :meth:`ecsspot.sim.world.World.advance`)."""
        self.world.advance(seconds, settle=settle)

    def run_until(self, condition: Any, *, timeout: float, step: float = 1.0) -> bool:
        """Advance in ``step`` increments until ``condition()`` is true or ``timeout`` has passed."""
        deadline = self.now() + timeout
        while not condition():
            if self.now() >= deadline:
                return False
            self.advance(min(step, deadline - self.now()))
        return True

    # scenario controls
    def interrupt(self, instance_ids: Iterable[str]) -> list[str]:
        """Spot interruption warnings now; EC2 terminates the instances two minutes later."""
        with self.world.lock:
            return self.world.market.interrupt(list(instance_ids))

    def recommend_rebalance(self, instance_ids: Iterable[str]) -> list[str]:
        with self.world.lock:
            return self.world.market.recommend_rebalance(list(instance_ids))

    def set_spot_capacity(self, available: bool, *, group: str | None = None, instance_type: str | None = None) -> None:
        """Whether spot launches (of a group, of an instance type, or all) find capacity."""
        with self.world.lock:
            self.world.market.set_capacity(available, group=group, instance_type=instance_type)

    def spot_instances(self, group: str | None = None) -> list[str]:
        """Running spot instances (of one group), oldest first."""
        return [
            m.instance_id
            for m in self.world.machines.values()
            if m.lifecycle == SPOT and m.running and m.reclaim_at is None and (group is None or m.group == group)
        ]

    def storm(self, fraction: float, *, group: str | None = None) -> list[str]:
        """Interrupt a seeded random ``fraction`` of the running spot instances (at least one)."""
        with self.world.lock:
            candidates = self.spot_instances(group)
            if not candidates:
                return []
            count = max(1, round(len(candidates) * fraction))
            chosen = sorted(self.world.rng.sample(candidates, count))
            return self.world.market.interrupt(chosen)

    def register_lambda(self, function_name_or_arn: str, handler: Handler, *, timeout: float = 900.0) -> None:
        """EventBridge rules targeting this function call ``handler(event, context)`` in-process."""
        with self.world.lock:
            self.world.events.register_lambda(function_name_or_arn, handler, timeout=timeout)

    @property
    def invocations(self) -> Sequence[Invocation]:
        return tuple(self.world.events.invocations)

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Events the simulated services emitted (in their EventBridge envelope)."""
        return [e for e in self.world.events.emitted if detail_type is None or e["detail-type"] == detail_type]

    # traffic
    def start_traffic(self, target_group_arn: str, rps: float, *, duration: float | None = None, keep_alive: float = 0.0) -> None:
        """Send ``rps`` requests per second through the target group (see :mod:`ecsspot.sim.traffic`)."""
        with self.world.lock:
            self.world.traffic.start(target_group_arn, rps, duration=duration, keep_alive=keep_alive)

    def stop_traffic(self, target_group_arn: str) -> None:
        with self.world.lock:
            self.world.traffic.stop(target_group_arn)

    def traffic_stats(self, target_group_arn: str | None = None) -> TrafficStats:
        return self.world.traffic.totals(target_group_arn)

    # what happened
    @property
    def history(self) -> Sequence[Record]:
        return self.world.history

    def records(self, kind: str, subject: str | None = None) -> list[Record]:
        return [r for r in self.world.history if r.kind == kind and (subject is None or r.subject == subject)]
