"""The simulated world: virtual time, one lock, timers, the history, and the moto backends.

Every behaviour module (agent, scheduler, spot, autoscaling, alb, eventbridge, traffic) hangs
off one :class:`World`. Time moves only in :meth:`World.advance`, in ticks of at most
``Timings.tick`` virtual seconds; each tick runs due timers, then every module in a fixed order,
all under :attr:`World.lock` (the seam takes the same lock around every moto request, so server
threads never see a half-applied tick). Work that calls user code (Lambda handlers) is queued
and run between ticks, outside the lock, so a handler may call the moto server and sleep on the
simulator's clock.

Each piece of that work runs as a :class:`_Process`: a thread of its own that runs only while
the thread advancing the world waits for it, so one thing runs at a time, in a seeded order.
A process that sleeps on the clock parks until the world reaches its wake-up time; meanwhile
other invocations start and the world ticks, as concurrent Lambda invocations do on AWS
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html). Running each
invocation inside the previous one's sleep instead nested them: hundreds of concurrent
invocations overflowed Python's stack (RecursionError), and the first one started waited for
the last one to finish.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import heapq
import itertools
import math
import random
import threading
import types
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from ecsspot.clock import FakeClock

DEFAULT_ACCOUNT_ID = "123456789012"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(value or {}))


@attrs.frozen
class Record:
    """One thing that happened, at a virtual time: ``kind`` names what, ``subject`` on what."""

    time: float
    kind: str
    subject: str
    detail: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


@attrs.frozen
class Timings:
    """How long things take in the simulated world (virtual seconds).

    AWS documents only some of these (the spot warning); the others are typical observed values,
    kept here so a test can make a scenario faster or slower without touching the rules.
    """

    #: EC2 ``pending`` to ``running`` (and the ASG's ``Pending`` to ``InService``).
    instance_boot: float = 30.0
    #: From ``running`` until the ECS agent has registered the container instance.
    agent_start: float = 10.0
    #: From task placement (``PENDING``) to ``RUNNING``: image pull and container start.
    task_start: float = 10.0
    #: From an EC2 termination until ECS notices: container instance INACTIVE, its tasks STOPPED.
    termination_detection: float = 20.0
    #: Spot interruption notice to termination, as documented for EC2 Spot.
    spot_warning: float = 120.0
    #: From EC2's interruption notice until its "EC2 Spot Instance Interruption Warning" event
    #: reaches EventBridge rules. AWS emits the notices "on a best effort basis"
    #: (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html)
    #: and gives no figure; a few seconds is what is seen. The two minutes count from the notice,
    #: so the lag comes out of them.
    spot_warning_lag: float = 3.0
    #: Probability that EC2 reclaims a warned spot instance before the two minutes are up (at a
    #: seeded time within them, possibly before the warning event is out): "it is possible that
    #: your Spot Instance is terminated before the warning can be made available" (same page).
    #: 0 by default so scenarios keep their two minutes; set it to test the early case.
    spot_early_termination: float = 0.0
    #: EventBridge to an SQS target: typically well under a second.
    event_delivery: float = 0.5
    #: How late Lambda's SQS poller sees a message that became visible. Its long polls return
    #: as soon as a message arrives; on the virtual clock that is the next poll.
    sqs_poll: float = 1.0
    #: How soon an Auto Scaling group retries a launch that failed for lack of capacity.
    launch_retry: float = 10.0
    #: From an instance entering ``Terminating:Wait`` until ECS managed instance draining acts on
    #: it (sets DRAINING; completes its hook once nothing runs there). ECS gives no figure.
    ecs_reaction: float = 5.0
    #: How long a target takes to answer one request (simulated traffic); a request in flight
    #: when its target goes away fails.
    request_duration: float = 0.2
    #: The longest step of the world; shorter steps are taken to land exactly on a target time.
    tick: float = 1.0
    #: Take the ticks in which nothing can change in one step (see ``World._span``): the same
    #: outcome in less time; off, every tick is played.
    skip_quiet: bool = True


@attrs.frozen
class Machine:
    """An EC2 instance the simulator launched, as EC2 knows it."""

    instance_id: str
    instance_type: str
    availability_zone: str
    #: ``spot`` or ``on-demand`` (EC2's ``InstanceLifecycle``, absent for on-demand).
    lifecycle: str
    group: str | None
    launched_at: float
    #: Capacity units the instance counts for in its group (``WeightedCapacity``).
    weight: int = 1
    running_at: float | None = None
    terminated_at: float | None = None
    #: When EC2 Spot will reclaim it (set by an interruption warning).
    reclaim_at: float | None = None

    @property
    def running(self) -> bool:
        return self.running_at is not None and self.terminated_at is None


class SimClock(FakeClock):
    """A :class:`~ecsspot.clock.FakeClock` whose sleeps run the simulated world forward."""

    def __init__(self, world: World, start: float) -> None:
        super().__init__(start)
        self._world = world

    def advance(self, seconds: float) -> None:
        self._world.advance(seconds)

    def _step(self, seconds: float) -> None:
        FakeClock.advance(self, seconds)


class WorldLock:
    """The world's reentrant lock, counting the changes it guards.

    Everything that changes the world takes it with ``with`` (ticks, scenario controls, every
    request but the reads the seam answers from :attr:`World.reads`), and each such entry is
    taken to change something: :attr:`version` moves on. Requests to other services than ELB
    take it with :meth:`elsewhere`, the world's own ticks with :meth:`ticking`: neither moves
    :attr:`writes`, as what they change in a target group goes through the load balancer module
    and shows in that group's revision (:meth:`ecsspot.sim.alb.LoadBalancing.revision`); ticks
    do not move :attr:`changes` either. The seam's cacheable reads take it with
    :meth:`acquire`, which moves nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.version = 0
        #: Entries that may change a target group outside the load balancer module: ELB
        #: requests, scenario controls, code changing moto's objects.
        self.writes = 0
        #: Entries by anything but a tick (every request but the shared reads, the controls).
        self.changes = 0

    def __enter__(self) -> WorldLock:
        self._lock.acquire()
        self.version += 1
        self.writes += 1
        self.changes += 1
        return self

    @contextlib.contextmanager
    def elsewhere(self) -> Iterator[None]:
        """Held by requests to other services than ELB."""
        self._lock.acquire()
        self.version += 1
        self.changes += 1
        try:
            yield
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def ticking(self) -> Iterator[None]:
        """Held by the world's ticks."""
        self._lock.acquire()
        self.version += 1
        try:
            yield
        finally:
            self._lock.release()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()


class SimulationClosed(BaseException):
    """Raised in a process still sleeping when its simulator closes (not an ``Exception``: a
    handler's ``except Exception`` must not swallow it and carry on)."""


class _Current(threading.local):
    process: _Process | None = None


_current = _Current()


class _Process:
    """One piece of outside work on a thread of its own, run only while its driver waits.

    The driver calls :meth:`run` and blocks until the process finishes or parks in
    :meth:`sleep_until`; the process blocks until the driver runs it again. So exactly one of
    them runs at any moment, and the world stays single-threaded in effect.
    """

    def __init__(self, world: World, action: Callable[[], None]) -> None:
        self.world = world
        self.action = action
        self.seq = next(world._seq)
        self.closed = False
        self._go = threading.Semaphore(0)
        self._back = threading.Semaphore(0)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Run the process until it parks or finishes (from the driving thread)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=f"sim-process-{self.seq}", daemon=True)
            self._thread.start()
        else:
            self._go.release()
        self._back.acquire()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _main(self) -> None:
        _current.process = self
        try:
            self.action()
        except SimulationClosed:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the driver, which raises it
            self._error = exc
        finally:
            self._back.release()

    def sleep_until(self, wake: float) -> None:
        """Park until the world's clock reaches ``wake`` (from the process's own thread)."""
        heapq.heappush(self.world._sleepers, (wake, next(self.world._seq), self))
        self._back.release()
        self._go.acquire()
        if self.closed:
            raise SimulationClosed


class World:
    """State shared by the behaviour modules; see the module docstring for the tick model."""

    def __init__(
        self,
        *,
        region: str,
        seed: int,
        timings: Timings,
        account_id: str = DEFAULT_ACCOUNT_ID,
        start: float = 1_700_000_000.0,
        managed_scaling: bool = False,
        protection_keeps_daemon_only: bool = False,
    ) -> None:
        from ecsspot.sim.agent import Agent
        from ecsspot.sim.alb import LoadBalancing
        from ecsspot.sim.autoscaling import AutoScaling
        from ecsspot.sim.capacity import ClusterAutoScaling
        from ecsspot.sim.draining import ManagedDraining
        from ecsspot.sim.eventbridge import EventBus
        from ecsspot.sim.scheduler import Scheduler
        from ecsspot.sim.spot import SpotMarket
        from ecsspot.sim.traffic import Traffic

        self.region = region
        self.account_id = account_id
        self.seed = seed
        self.timings = timings
        self.rng = random.Random(seed)
        # Reentrant: in-process, a request made while the world holds the lock (never by the
        # world itself, but by user code it calls under the lock) must not deadlock.
        self.lock = WorldLock()
        #: Read-only requests answered at :attr:`WorldLock.version` (DescribeTargetHealth: at
        #: :attr:`WorldLock.writes` and the group's revision), by request (the seam's
        #: :func:`~ecsspot.sim.seam._locked_call_action`): many concurrent drains polling the
        #: same target groups get the one answer without moto serialising it again.
        self.reads: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        #: The same answers by raw in-process request, found before moto parses it again.
        self.raw_reads: dict[tuple[Any, ...], tuple[str | None, Any, Any]] = {}
        self.clock = SimClock(self, start)
        #: When the simulated account came into being: the spot market's prices hold from here.
        self.started_at = start
        self.history: list[Record] = []
        self.machines: dict[str, Machine] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._outside: deque[Callable[[], None]] = deque()
        #: Parked processes by wake-up time (then start order: deterministic).
        self._sleepers: list[tuple[float, int, _Process]] = []
        #: (history length, lock changes) after a tick that recorded nothing (see :meth:`_span`).
        self._quiet_since: tuple[int, int] | None = None
        # One thread drives processes at a time (a background thread may advance too).
        self._driving = threading.RLock()

        self.events = EventBus(self)
        self.market = SpotMarket(self)
        self.autoscaling = AutoScaling(self)
        self.agent = Agent(self)
        self.alb = LoadBalancing(self)
        self.scheduler = Scheduler(self)
        self.traffic = Traffic(self)
        self.capacity = ClusterAutoScaling(self, enabled=managed_scaling, keeps_daemon_only=protection_keeps_daemon_only)
        self.draining = ManagedDraining(self)

    # moto backends of this world's account and region (global dicts shared with the server;
    # looked up once: the simulator's lifetime is within one moto mock)
    @functools.cached_property
    def ec2(self) -> Any:
        from moto.ec2.models import ec2_backends

        return ec2_backends[self.account_id][self.region]

    @functools.cached_property
    def asg(self) -> Any:
        from moto.autoscaling.models import autoscaling_backends

        return autoscaling_backends[self.account_id][self.region]

    @functools.cached_property
    def ecs(self) -> Any:
        from moto.ecs.models import ecs_backends

        return ecs_backends[self.account_id][self.region]

    @functools.cached_property
    def elbv2(self) -> Any:
        from moto.elbv2.models import elbv2_backends

        return elbv2_backends[self.account_id][self.region]

    @functools.cached_property
    def eventbridge(self) -> Any:
        from moto.events.models import events_backends

        return events_backends[self.account_id][self.region]

    def owns(self, account_id: str, region: str) -> bool:
        return account_id == self.account_id and region == self.region

    # time
    def now(self) -> float:
        return self.clock.now()

    def datetime(self, t: float | None = None) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now() if t is None else t, tz=dt.UTC)

    def iso(self, t: float | None = None, *, millis: bool = False) -> str:
        stamp = self.datetime(t)
        if millis:
            return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")

    def uuid(self) -> str:
        """A seeded UUID, so ids the simulator makes are the same run to run."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def machine(self, instance_id: str) -> Machine | None:
        return self.machines.get(instance_id)

    def update_machine(self, instance_id: str, **changes: Any) -> Machine:
        machine = attrs.evolve(self.machines[instance_id], **changes)
        self.machines[instance_id] = machine
        return machine

    def instance_running(self, instance_id: str) -> bool:
        """Whether EC2 has the instance up: the simulator's own record, else moto's state."""
        machine = self.machines.get(instance_id)
        if machine is not None:
            return machine.running
        instance = self.ec2.get_instance_by_id(instance_id)
        return instance is not None and instance.state == "running"

    def terminate_ec2(self, instance_id: str) -> None:
        """Terminate the EC2 instance (the seam's ``Instance.terminate`` hook does the rest)."""
        instance = self.ec2.get_instance_by_id(instance_id)
        if instance is not None and instance.state != "terminated":
            self.ec2.terminate_instances([instance_id])

    def instance_terminated(self, instance_id: str) -> None:
        """Called by the seam whenever moto terminates an instance, whoever asked."""
        machine = self.machines.get(instance_id)
        if machine is None or machine.terminated_at is not None:
            return
        self.update_machine(instance_id, terminated_at=self.now())
        self.record("ec2.state", instance_id, state="terminated")
        self.events.ec2_state_change(instance_id, "terminated")
        self.autoscaling.instance_gone(instance_id)
        self.agent.instance_gone(instance_id)

    def record(self, kind: str, subject: str, **detail: Any) -> Record:
        entry = Record(self.now(), kind, subject, detail)
        self.history.append(entry)
        return entry

    def at(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` (under the lock) once ``delay`` virtual seconds have passed."""
        heapq.heappush(self._timers, (self.now() + max(0.0, delay), next(self._seq), action))

    def outside_lock(self, action: Callable[[], None]) -> None:
        """Queue user-facing work (Lambda invocations) to run between ticks, without the lock."""
        self._outside.append(action)

    def advance(self, seconds: float, *, settle: bool = True) -> None:
        """Run the world forward ``seconds`` of virtual time (0 delivers what is queued).

        From a process (a Lambda handler sleeping on the clock), park it until then. Otherwise
        the calling thread drives: it returns once the time has passed and, with ``settle``,
        every process it started has finished, as a handler's sleep used to run the world until
        it returned. Without ``settle`` it returns on time, processes still sleeping stay parked
        and go on in the next advance: a scenario's next step (a wave of interruptions) then
        comes when it is due, not when the last Lambda started before it has finished.
        """
        process = _current.process
        if process is not None and process.world is self:
            process.sleep_until(self.now() + max(0.0, seconds))
            return
        target = self.now() + max(0.0, seconds)
        with self._driving:
            while True:
                self._run_ready()
                with self.lock.ticking():
                    now = self.now()
                    step = target - now
                    if step <= 1e-9 and not settle:
                        break
                    if self._sleepers:
                        wake = self._sleepers[0][0] - now
                        step = wake if step <= 1e-9 else min(step, wake)
                    if step <= 1e-9:
                        if now >= target - 1e-9 and not self._sleepers and not self._outside:
                            break
                        continue
                    self._tick(self._span(step))

    def _run_ready(self) -> None:
        """Start queued work and resume processes whose wake-up time has come, until none is left."""
        while True:
            if self._outside:
                _Process(self, self._outside.popleft()).run()
            elif self._sleepers and self._sleepers[0][0] <= self.now() + 1e-9:
                _, _, process = heapq.heappop(self._sleepers)
                process.run()
            else:
                return

    def close(self) -> None:
        """End parked processes (left by a driver that raised): their sleep raises :class:`SimulationClosed`."""
        while self._sleepers:
            _, _, process = heapq.heappop(self._sleepers)
            process.closed = True
            process.run()
        self._outside.clear()

    def _span(self, step: float) -> float:
        """How far the next tick goes: ``Timings.tick``, or, while the world is quiet, every
        whole tick before the next one in which anything is due.

        Quiet: the last tick recorded nothing, nothing took the lock to change the world since
        (a request, a control) and nothing waits to start. Then every tick until the next due
        time (a timer, a sleeper's wake-up, a health check that can change a target's state, a
        deregistration delay's end, a task's start or stop timeout, a lifecycle action's
        timeout, ECS managed scaling's next look) would again change nothing but the traffic
        and health-check counters, which :meth:`Traffic.tick` and :meth:`LoadBalancing.tick`
        account over a span. The tick that reaches the due time ends where a run of
        ``Timings.tick`` ticks would end it, so nothing happens at another time.
        """
        tick = self.timings.tick
        if not self.timings.skip_quiet or step <= 2 * tick or self._outside or (len(self.history), self.lock.changes) != self._quiet_since:
            return min(tick, step)
        now = self.now()
        dues = [now + step, self.alb.due(), self.scheduler.due(), self.autoscaling.due(), self.draining.due(), self.capacity.due()]
        if self._timers:
            dues.append(self._timers[0][0])
        due = min(d for d in dues if d is not None)
        # Whole ticks that end strictly before the due time; the normal tick after them reaches it.
        quiet = math.ceil((due - now) / tick - 1e-9) - 1
        return quiet * tick if quiet >= 2 else min(tick, step)

    def _tick(self, seconds: float) -> None:
        recorded = len(self.history)
        self.clock._step(seconds)
        now = self.now()
        while self._timers and self._timers[0][0] <= now + 1e-9:
            _, _, action = heapq.heappop(self._timers)
            action()
        self.autoscaling.tick()
        self.agent.tick()
        # The load balancer before the scheduler: a target that finished draining this tick lets
        # its task get SIGTERM in the same tick.
        self.alb.tick()
        self.scheduler.tick()
        # After the scheduler: a hook is completed in the tick its instance's last task stopped.
        self.draining.tick()
        # After the scheduler: it just said what it could not place.
        self.capacity.tick()
        self.traffic.tick(seconds, tick=self.timings.tick)
        # What the next tick compares to decide whether the world is quiet.
        self._quiet_since = (len(self.history), self.lock.changes) if len(self.history) == recorded else None
