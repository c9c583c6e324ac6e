"""The ECS service scheduler for services on EC2 container instances.

moto creates services without tasks (its ``runningCount`` is whatever was asked for) and
reserves ``hostPort: 0`` literally, so one dynamic-port task fits per instance. Here each
service's tasks are placed on ACTIVE container instances with room, following the service's
capacity provider strategy (else the cluster default), with dynamic host ports from the
ephemeral range; tasks move off DRAINING instances within minimumHealthyPercent and
maximumPercent; load-balanced tasks register their (instance, port) targets when RUNNING and are
stopped only after their targets have drained (deregistration delay) plus the stop timeout.

Also, each citing the page it imitates where the rule is made:

* task counts (container instance, service, cluster) count tasks whose *desired* status is
  RUNNING; a task being stopped (DEACTIVATING, STOPPING) is no longer counted (:meth:`publish`);
* a stopped task passes through DEACTIVATING (its targets draining) and STOPPING (SIGTERM, then
  the stop timeout: the container's ``stopTimeout``, else ``ECS_CONTAINER_STOP_TIMEOUT`` from the
  instance's ecs.config, default 30 s) before STOPPED (:meth:`Scheduler.stop`);
* ``awsvpc`` tasks get an elastic network interface with a private IP in the instance's subnet
  (DescribeTasks ``attachments``), at most one per secondary interface the instance type has,
  and register ``(ip, container port)`` targets (:meth:`Scheduler._start`);
* DAEMON services run one task per ACTIVE container instance, none on DRAINING ones, where the
  daemon task stops last, once every other task there has stopped (:meth:`_reconcile_daemon`);
* standalone tasks (RunTask, placed by moto on ACTIVE instances) are tracked here too: they
  count, hold resources, and nothing moves or stops them but StopTask or the loss of their
  instance (:meth:`_adopt`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import types
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
from moto.ecs.models import Task

from ecsspot.sim.alb import HEALTHY, UNUSED

if TYPE_CHECKING:
    from ecsspot.sim.agent import Node
    from ecsspot.sim.world import World

PENDING, RUNNING, DEACTIVATING, STOPPING, STOPPED = "PENDING", "RUNNING", "DEACTIVATING", "STOPPING", "STOPPED"
#: Statuses in which the task's containers are up (and answer on their ports once RUNNING).
_UP = frozenset({RUNNING, DEACTIVATING, STOPPING})
# Dynamic host ports come from the kernel's ip_local_port_range (32768-60999 on Linux), see
# PortMapping.hostPort in https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PortMapping.html
EPHEMERAL_PORTS = range(32768, 61000)
#: Network interfaces per instance size (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/AvailableIpPerENI.html,
#: the m5/m6i/c5/r5 rows); the primary one is the instance's own, so an awsvpc task fits per
#: secondary one (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-networking-awsvpc.html:
#: "each task that uses the awsvpc network mode receives its own elastic network interface").
#: ENI trunking is not simulated.
_ENIS_BY_SIZE = {"medium": 3, "large": 3, "xlarge": 4, "2xlarge": 4}
#: Counts of a service, instance or cluster without tasks (read only).
_NO_TASKS: Counter[str] = Counter()


class ServiceTask(Task):
    """A moto task whose status the scheduler sets (moto's advances on every DescribeTasks)."""

    # Fields of DescribeTasks that moto's Task leaves unset and the scheduler sets (moto shows
    # whichever are present); ``attachments`` as moto builds them (ENI details), typed loosely.
    availability_zone: str
    created_at: dt.datetime
    started_at: dt.datetime
    pull_started_at: dt.datetime
    pull_stopped_at: dt.datetime
    stopping_at: dt.datetime
    stopped_at: dt.datetime
    execution_stopped_at: dt.datetime
    stop_code: str
    cpu: str
    memory: str
    connectivity: str
    version: int
    attachments: list[dict[str, Any]]

    @property
    def status(self) -> str | None:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        self._status = value


@attrs.frozen
class Binding:
    container: str
    container_port: int
    host_port: int


@attrs.frozen
class Run:
    """One service task as the scheduler tracks it."""

    arn: str
    service: str
    cluster: str
    instance_id: str
    node_arn: str
    task_definition: str
    cpu: int
    memory: int
    bindings: tuple[Binding, ...]
    provider: str | None
    created_at: float
    stop_timeout: float
    status: str = PENDING
    desired: str = RUNNING
    #: (target group ARN, container name, container port) the task registers when RUNNING.
    load_balancers: tuple[tuple[str, str, int], ...] = ()
    targets_registered: bool = False
    sigterm_at: float | None = None
    network_mode: str = "bridge"
    #: The task ENI's private IPv4 address (awsvpc tasks).
    ip: str | None = None
    daemon: bool = False

    @property
    def standalone(self) -> bool:
        """Started by RunTask, not by a service."""
        return not self.service

    def addresses(self) -> list[tuple[str, int]]:
        """Where the task's ports answer: (instance id, host port), or (ENI IP, container port)."""
        if self.ip is not None:
            return [(self.ip, b.container_port) for b in self.bindings]
        return [(self.instance_id, b.host_port) for b in self.bindings]

    def targets(self) -> list[tuple[str, str, int]]:
        """(target group ARN, target id, port) of each load balancer entry: the instance and host
        port, or for an awsvpc task its ENI's IP and the container port (target type ``ip``)."""
        out = []
        for tg_arn, container, port in self.load_balancers:
            for binding in self.bindings:
                if binding.container == container and binding.container_port == port:
                    if self.ip is not None:
                        out.append((tg_arn, self.ip, binding.container_port))
                    else:
                        out.append((tg_arn, self.instance_id, binding.host_port))
        return out


@attrs.frozen
class Needs:
    """What one task of a task definition takes from an instance."""

    cpu: int
    memory: int
    network_mode: str
    #: (container name, container port, fixed host port or 0 for a dynamic one)
    ports: tuple[tuple[str, int, int], ...]


def needs_of(task_definition: Any) -> Needs:
    """CPU and memory at task level when set, else the containers' sum (memoryReservation, the
    soft limit, is what placement reserves when it is given)."""
    containers = task_definition.container_definitions
    cpu = int(task_definition.cpu) if task_definition.cpu else sum(int(c.get("cpu") or 0) for c in containers)
    memory = int(task_definition.memory) if task_definition.memory else sum(int(c.get("memoryReservation") or c.get("memory") or 0) for c in containers)
    mode = task_definition.network_mode or "bridge"
    ports = []
    for container in containers:
        for mapping in container.get("portMappings") or []:
            container_port = int(mapping.get("containerPort") or 0)
            host_port = container_port if mode == "host" else int(mapping.get("hostPort") or 0)
            ports.append((container["name"], container_port, host_port))
    return Needs(cpu, memory, mode, tuple(ports))


class Scheduler:
    def __init__(self, world: World) -> None:
        self.world = world
        #: Every task ever tracked (DescribeTasks shows stopped ones too); write through :meth:`_put`.
        self.runs: dict[str, Run] = {}
        #: The tasks not STOPPED (in the order they were created), and the same by service key
        #: ("" for standalone ones): what each tick works on. A storm creates thousands of tasks;
        #: going over all of them every tick, per service, made ticks grow with the history
        #: instead of with the cluster.
        self._live: dict[str, Run] = {}
        self._by_service: dict[str, dict[str, Run]] = {}
        self.tasks: dict[str, ServiceTask] = {}
        #: (instance id or ENI IP, port) -> the task ARN answering there.
        self._listeners: dict[tuple[str, int], str] = {}
        #: Task ENI addresses ever handed out (never reused, so a target id names one task).
        self._addresses: set[str] = set()
        self._steady: dict[str, bool] = {}
        self._said: set[tuple[str, str]] = set()
        #: Capacity provider → (CPU, memory) of the tasks it could not place this tick: what
        #: ECS managed scaling counts as waiting for capacity (ecsspot.sim.capacity).
        self.unplaced: dict[str | None, tuple[int, int]] = {}
        #: What a task of each task definition revision needs, by ARN.
        self._needs: dict[str, Needs] = {}
        #: :meth:`_usage`'s answer until a task changes.
        self._used: dict[str, tuple[int, int, set[int]]] | None = None

    # what the load balancer asks
    def listening(self, target_id: str, port: int) -> bool:
        """Whether a health check or request to (instance or IP, port) finds a live process."""
        arn = self._listeners.get((target_id, int(port)))
        if arn is None:
            # Not one of our tasks' ports: the instance itself answers; an unknown IP does not.
            return target_id.startswith("i-") and self.world.instance_running(target_id)
        run = self.runs[arn]
        return self.world.instance_running(run.instance_id) and run.status in _UP

    # the tick
    def tick(self) -> None:
        self._adopt()
        for run in self.live():
            self._progress(run)
        self.unplaced = {}
        for key, service in list(self.world.ecs.services.items()):
            self._reconcile(key, service)
        self.publish()

    def due(self) -> float | None:
        """When a tick next moves a task on by time alone: a PENDING task's start, a STOPPING
        task's stop timeout; now for a task whose next step waits on nothing (its instance gone
        or draining, its targets drained). Reconciling services changes nothing by itself
        unless something else changed: a task that cannot be placed is recorded every tick."""
        world = self.world
        now = world.now()
        due: float | None = None
        for run in self._live.values():
            node = self._node(run)
            status = world.agent.status(node) if node is not None else "INACTIVE"
            if status == "INACTIVE":
                return now
            if run.status == PENDING:
                if (status == "DRAINING" and not run.standalone) or run.desired == STOPPED:
                    return now
                when = run.created_at + world.timings.task_start
            elif run.status == DEACTIVATING:
                if all(world.alb.state(tg, i, p) == UNUSED for tg, i, p in run.targets()):
                    return now
                continue  # until the load balancer has drained its targets (LoadBalancing.due)
            elif run.status == STOPPING and run.sigterm_at is not None:
                when = run.sigterm_at + run.stop_timeout
            else:
                continue
            due = when if due is None else min(due, when)
        return due

    def _node(self, run: Run) -> Node | None:
        return self.world.agent.nodes.get(run.instance_id)

    def _progress(self, run: Run) -> None:
        world = self.world
        now = world.now()
        node = self._node(run)
        node_status = world.agent.status(node) if node is not None else "INACTIVE"
        if node_status == "INACTIVE":
            machine = world.machine(run.instance_id)
            gone = machine is not None and machine.terminated_at is not None
            reason = f"Host EC2 (instance {run.instance_id}) terminated." if gone else "Container instance deregistered"
            self._deregister_targets(run)
            self._set(run, status=STOPPED, desired=STOPPED, stop_code="TerminationNotice", reason=reason)
            return
        if run.status == PENDING:
            if (node_status == "DRAINING" and not run.standalone) or run.desired == STOPPED:
                # "Any tasks that are part of a service that are in a PENDING state are stopped
                # immediately"; "any standalone tasks in the PENDING or RUNNING state are
                # unaffected" (container instance draining).
                self._set(run, status=STOPPED, desired=STOPPED, stop_code="ServiceSchedulerInitiated", reason="Container instance is draining")
            elif now >= run.created_at + world.timings.task_start and world.instance_running(run.instance_id):
                run = self._set(run, status=RUNNING)
                self._register_targets(run)
        elif run.status == DEACTIVATING:
            if all(world.alb.state(tg, i, p) == UNUSED for tg, i, p in run.targets()):
                self._set(run, status=STOPPING, sigterm_at=now)
        elif run.status == STOPPING and run.sigterm_at is not None and now >= run.sigterm_at + run.stop_timeout:
            self._set(run, status=STOPPED)

    def _reconcile(self, key: str, service: Any) -> None:
        world = self.world
        if service.cluster_name not in world.ecs.clusters or service.launch_type == "FARGATE":
            return
        runs = list(self._by_service.get(key, {}).values())
        if service.status != "ACTIVE":
            for run in runs:
                if run.desired == RUNNING:
                    self.stop(run, "Service deleted", "ServiceSchedulerInitiated")
            if service.status == "DRAINING" and not runs:
                service.status = "INACTIVE"
            return
        if not service.task_definition:
            return
        task_definition = world.ecs.describe_task_definition(service.task_definition)
        needs = self._needs.get(task_definition.arn)
        if needs is None:
            # A task definition revision never changes: what it needs is worked out once.
            needs = self._needs[task_definition.arn] = needs_of(task_definition)
        if getattr(service, "scheduling_strategy", "REPLICA") == "DAEMON":
            self._reconcile_daemon(key, service, task_definition, needs, runs)
            return
        desired = service.desired_count or 0
        config = getattr(service, "deployment_configuration", None) or {}
        maximum = math.floor(desired * int(config.get("maximumPercent", 200)) / 100)
        minimum_healthy = math.ceil(desired * int(config.get("minimumHealthyPercent", 100)) / 100)
        live = [r for r in runs if r.desired == RUNNING]
        outdated = [r for r in live if self._outdated(r, task_definition.arn)]
        stale = {r.arn for r in outdated}
        current = [r for r in live if r.arn not in stale]

        # Scale in: the surplus goes, unaffected by minimumHealthyPercent.
        for run in self._surplus(current, len(current) - desired):
            self.stop(run, f"Scaling activity initiated by (deployment {self._deployment(service)})", "ServiceSchedulerInitiated")
            current.remove(run)
            live.remove(run)

        # Start replacements while the running count stays within maximumPercent.
        room = maximum - len(runs)
        started: list[Run] = []
        wanted = max(0, min(desired - len(current), room))
        for _ in range(wanted):
            placed = self._place(key, service, task_definition, needs, current + started)
            if placed is None:
                self._count_unplaced(service, needs, current + started, wanted - len(started))
                break
            started.append(placed)
        if started:
            self._event(service, f"(service {service.name}) has started {len(started)} tasks: {', '.join('(task ' + r.arn.split('/')[-1] + ')' for r in started)}.")

        # Stop outdated tasks (on DRAINING instances, or of an older task definition) while
        # the healthy count stays at or above minimumHealthyPercent
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/container-instance-draining.html).
        # Stopping one task changes only its own targets: each task's health is read once.
        is_healthy = {r.arn: self._healthy(r) for r in live}
        healthy = sum(is_healthy.values())
        for run in sorted(outdated, key=lambda r: (is_healthy[r.arn], r.created_at)):
            if not is_healthy[run.arn]:
                self.stop(run, "Task stopped by ECS: container instance is draining", "ServiceSchedulerInitiated")
            elif healthy - 1 >= minimum_healthy:
                healthy -= 1
                self.stop(run, "Task stopped by ECS: container instance is draining", "ServiceSchedulerInitiated")

        steady = len(current) + len(started) == desired and not outdated and all(is_healthy[r.arn] for r in current)
        if steady and not self._steady.get(key):
            self._event(service, f"(service {service.name}) has reached a steady state.")
        self._steady[key] = steady

    def _reconcile_daemon(self, key: str, service: Any, task_definition: Any, needs: Needs, runs: list[Run]) -> None:
        """"The daemon scheduling strategy deploys exactly one task on each active container
        instance"; it "does not place any tasks on instances that have a DRAINING status", and
        ECS makes the daemon task "the first task to launch on the instances and the last task
        to stop" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_services.html#service_scheduler_daemon):
        on a DRAINING instance it stops once every other task there has stopped."""
        world = self.world
        live = [r for r in runs if r.desired == RUNNING]
        for run in live:
            if run.task_definition != task_definition.arn:
                # A new revision replaces each daemon task in place (minimumHealthyPercent 0).
                self.stop(run, f"Deployment (deployment {self._deployment(service)})", "ServiceSchedulerInitiated")
        live = [r for r in live if r.desired == RUNNING]
        hosted = {r.instance_id for r in runs}
        others = {r.instance_id for r in self.live() if not r.daemon}
        active = []
        for node in world.agent.nodes.values():
            if node.cluster != service.cluster_name or not world.instance_running(node.instance_id):
                continue
            status = world.agent.status(node)
            if status == "ACTIVE":
                active.append(node)
            elif status == "DRAINING":
                for run in live:
                    if run.instance_id == node.instance_id and node.instance_id not in others:
                        self.stop(run, "Task stopped by ECS: container instance is draining", "ServiceSchedulerInitiated")
        service.desired_count = len(active)
        used = self._usage()
        started = []
        for node in active:
            if node.instance_id in hosted:
                continue
            bindings = self._fits(node, needs, used)
            if bindings is None:
                world.record("service.placement_failed", key, capacity_provider=None)
                continue
            started.append(self._start(key, service, task_definition, needs, node, bindings, None, daemon=True))
        if started:
            self._event(service, f"(service {service.name}) has started {len(started)} tasks: {', '.join('(task ' + r.arn.split('/')[-1] + ')' for r in started)}.")

    def _count_unplaced(self, service: Any, needs: Needs, runs: list[Run], missing: int) -> None:
        """Charge the tasks that found no room to the providers the strategy would give them."""
        strategy = self._strategy(service)
        assigned: list[Any] = list(runs)
        for _ in range(missing):
            provider = self._pick_provider(strategy, assigned) if strategy else None
            assigned.append(types.SimpleNamespace(provider=provider))
            cpu, memory = self.unplaced.get(provider, (0, 0))
            self.unplaced[provider] = (cpu + needs.cpu, memory + needs.memory)

    def _outdated(self, run: Run, task_definition_arn: str) -> bool:
        node = self._node(run)
        return run.task_definition != task_definition_arn or (node is not None and self.world.agent.status(node) == "DRAINING")

    def _healthy(self, run: Run) -> bool:
        """"Tasks for services that use a load balancer are considered healthy if they are in the
        RUNNING state and ... reported as healthy by the load balancer" (draining page above)."""
        if run.status != RUNNING or run.desired != RUNNING:
            return False
        return all(self.world.alb.state(tg, i, p) == HEALTHY for tg, i, p in run.targets())

    def _surplus(self, runs: list[Run], count: int) -> list[Run]:
        if count <= 0:
            return []
        # Pending first, then from the Availability Zone with the most tasks, newest first.
        chosen: list[Run] = []
        pool = list(runs)
        for _ in range(count):
            zones = Counter(self._zone(r) for r in pool)
            victim = max(pool, key=lambda r: (r.status == PENDING, zones[self._zone(r)], r.created_at))
            pool.remove(victim)
            chosen.append(victim)
        return chosen

    def _zone(self, run: Run) -> str:
        node = self._node(run)
        return node.availability_zone if node else ""

    # placement
    def _strategy(self, service: Any) -> list[dict[str, Any]]:
        strategy = getattr(service, "capacity_provider_strategy", None)
        if strategy:
            return list(strategy)
        if service.launch_type in (None, ""):
            cluster = self.world.ecs.clusters[service.cluster_name]
            return list(cluster.default_capacity_provider_strategy or [])
        return []

    def _provider_group(self, name: str) -> str | None:
        provider = self.world.ecs.capacity_providers.get(name.split("/")[-1])
        if provider is None:
            return None
        arn = provider.auto_scaling_group_provider.get("autoScalingGroupArn", "")
        return arn.split("autoScalingGroupName/")[-1] or None

    def _pick_provider(self, strategy: list[dict[str, Any]], runs: list[Run]) -> str:
        """The strategy's ``base`` tasks first, then the rest in proportion to ``weight``
        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-capacity-providers.html)."""
        counts = Counter(r.provider for r in runs)
        for item in strategy:
            if counts[item["capacityProvider"]] < int(item.get("base") or 0):
                return item["capacityProvider"]
        weighted = [item for item in strategy if int(item.get("weight") or 0) > 0] or strategy[:1]

        def load(item: dict[str, Any]) -> float:
            above = max(0, counts[item["capacityProvider"]] - int(item.get("base") or 0))
            return (above + 1) / max(1, int(item.get("weight") or 0))

        return min(weighted, key=lambda item: (load(item), weighted.index(item)))["capacityProvider"]

    def _place(self, key: str, service: Any, task_definition: Any, needs: Needs, runs: list[Run]) -> Run | None:
        world = self.world
        strategy = self._strategy(service)
        provider = self._pick_provider(strategy, runs) if strategy else None
        group = self._provider_group(provider) if provider else None
        used = self._usage()
        fits = []
        for node in world.agent.nodes.values():
            if node.cluster != service.cluster_name or world.agent.status(node) != "ACTIVE":
                continue
            if not world.instance_running(node.instance_id) or (provider and node.group != group):
                continue
            bindings = self._fits(node, needs, used)
            if bindings is not None:
                fits.append((node, bindings))
        if not fits:
            self._event(
                service,
                f"(service {service.name}) was unable to place a task because no container instance met all of its requirements.",
                once=True,
            )
            world.record("service.placement_failed", key, capacity_provider=provider)
            return None
        node, bindings = self._choose(service, fits, runs)
        return self._start(key, service, task_definition, needs, node, bindings, provider)

    def _fits(self, node: Node, needs: Needs, used: dict[str, tuple[int, int, set[int]]]) -> tuple[Binding, ...] | None:
        """The task's port bindings on ``node`` if its CPU, memory, ports and (awsvpc) a free
        network interface are there, else None."""
        cpu, memory, ports = used.get(node.instance_id, (0, 0, set()))
        if node.cpu - cpu < needs.cpu or node.memory - memory < needs.memory:
            return None
        if needs.network_mode == "awsvpc":
            enis = sum(1 for r in self.live() if r.instance_id == node.instance_id and r.ip is not None)
            if enis >= _ENIS_BY_SIZE.get(node.instance_type.partition(".")[2], 3) - 1:
                return None
            # The task has the interface to itself: its ports are the container ports.
            return tuple(Binding(c, cp, cp) for c, cp, _ in needs.ports)
        return self._bind(needs, ports)

    def _bind(self, needs: Needs, taken: set[int]) -> tuple[Binding, ...] | None:
        from ecsspot.sim.agent import RESERVED_PORTS

        busy = set(taken) | set(RESERVED_PORTS)
        out = []
        for container, container_port, host_port in needs.ports:
            if host_port:
                if host_port in busy:
                    return None
                port = host_port
            else:
                port = next((p for p in EPHEMERAL_PORTS if p not in busy), 0)
                if not port:
                    return None
            busy.add(port)
            out.append(Binding(container, container_port, port))
        return tuple(out)

    def _choose(self, service: Any, fits: list[tuple[Node, tuple[Binding, ...]]], runs: list[Run]) -> tuple[Node, tuple[Binding, ...]]:
        """The service's placement strategy; without one, spread over Availability Zones and
        then instances (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement-strategies.html)."""
        strategy = getattr(service, "placement_strategy", None) or [
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "spread", "field": "instanceId"},
        ]
        per_zone = Counter(self._zone(r) for r in runs)
        per_node = Counter(r.instance_id for r in runs)
        used = self._usage()
        tiebreak = {node.instance_id: self.world.rng.random() for node, _ in fits}

        def score(fit: tuple[Node, tuple[Binding, ...]]) -> tuple[Any, ...]:
            node = fit[0]
            keys: list[Any] = []
            for item in strategy:
                kind, field = item.get("type"), (item.get("field") or "").lower()
                if kind == "spread" and "availability-zone" in field:
                    keys.append(per_zone[node.availability_zone])
                elif kind == "spread":
                    keys.append(per_node[node.instance_id])
                elif kind == "binpack":
                    cpu, memory, _ = used.get(node.instance_id, (0, 0, set()))
                    keys.append(node.memory - memory if field == "memory" else node.cpu - cpu)
            keys.append(tiebreak[node.instance_id])
            return tuple(keys)

        return min(fits, key=score)

    def _usage(self) -> dict[str, tuple[int, int, set[int]]]:
        """CPU, memory and host ports the live tasks hold, by instance (read-only: shared until
        a task changes, as placing many tasks asks for it once per placement)."""
        if self._used is not None:
            return self._used
        used: dict[str, tuple[int, int, set[int]]] = {}
        for run in self._live.values():
            cpu, memory, ports = used.get(run.instance_id, (0, 0, set()))
            host_ports = {b.host_port for b in run.bindings} if run.ip is None else set()
            used[run.instance_id] = (cpu + run.cpu, memory + run.memory, ports | host_ports)
        self._used = used
        return used

    def _start(
        self, key: str, service: Any, task_definition: Any, needs: Needs, node: Node, bindings: tuple[Binding, ...], provider: str | None, *, daemon: bool = False
    ) -> Run:
        world = self.world
        ecs = world.ecs
        cluster = ecs.clusters[service.cluster_name]
        awsvpc = needs.network_mode == "awsvpc"
        # moto annotates these as dict[str, str], yet its own RunTask passes int and list values.
        requirements: dict[str, Any] = {"CPU": needs.cpu, "MEMORY": needs.memory, "PORTS": [] if awsvpc else [b.host_port for b in bindings], "PORTS_UDP": []}
        task = ServiceTask(
            cluster,
            task_definition,
            node.arn,
            requirements,
            backend=ecs,
            group=f"service:{service.name}",
            launch_type="EC2" if service.launch_type == "EC2" else "",
            started_by=self._deployment(service),
            networking_configuration=self._awsvpc_configuration(service, node) if awsvpc else None,
            capacity_provider_name=provider,
        )
        task.availability_zone = node.availability_zone
        task.created_at = world.datetime()
        task.cpu, task.memory = str(needs.cpu), str(needs.memory)
        task.connectivity = "CONNECTED"
        task.version = 0
        # moto's Container declares no network_bindings (nor exit_code): typed at this boundary.
        container: Any = task.containers[0]
        container.network_bindings = [
            {"bindIP": "0.0.0.0", "containerPort": b.container_port, "hostPort": b.host_port, "protocol": "tcp"}  # noqa: S104 - ECS reports this, no socket
            for b in bindings
            if b.container == container.name and not awsvpc
        ]
        ecs.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        stop_timeout = max(
            [float(c["stopTimeout"]) for c in task_definition.container_definitions if c.get("stopTimeout")] or [node.stop_timeout]
        )
        load_balancers = tuple(
            (lb["targetGroupArn"], lb.get("containerName", ""), int(lb.get("containerPort") or 0))
            for lb in service.load_balancers or []
            if lb.get("targetGroupArn")
        )
        run = Run(
            arn=task.task_arn,
            service=key,
            cluster=cluster.name,
            instance_id=node.instance_id,
            node_arn=node.arn,
            task_definition=task_definition.arn,
            cpu=needs.cpu,
            memory=needs.memory,
            bindings=bindings,
            provider=provider,
            created_at=world.now(),
            stop_timeout=stop_timeout,
            load_balancers=load_balancers,
            network_mode=needs.network_mode,
            ip=self._address(task, node) if awsvpc else None,
            daemon=daemon,
        )
        self._track(run, task)
        return run

    def live(self) -> list[Run]:
        """The tasks not STOPPED (a copy: ticking changes them)."""
        return list(self._live.values())

    def _put(self, run: Run) -> None:
        self.runs[run.arn] = run
        self._used = None
        if run.status == STOPPED:
            self._live.pop(run.arn, None)
            self._by_service.get(run.service, {}).pop(run.arn, None)
        else:
            self._live[run.arn] = run
            self._by_service.setdefault(run.service, {})[run.arn] = run

    def _track(self, run: Run, task: ServiceTask) -> None:
        self._put(run)
        self.tasks[run.arn] = task
        for address in run.addresses():
            self._listeners[address] = run.arn
        self._show(run, task)

    def _awsvpc_configuration(self, service: Any, node: Node) -> dict[str, Any]:
        """The task's interface goes in the instance's subnet (moto keeps no service
        networkConfiguration to choose from; on EC2 the ENI must be in the instance's AZ)."""
        instance = self.world.ec2.get_instance_by_id(node.instance_id)
        groups = [g.id for g in getattr(instance, "security_groups", ()) or ()]
        return {"awsvpcConfiguration": {"subnets": [instance.subnet_id], "securityGroups": groups}}

    def _address(self, task: ServiceTask, node: Node) -> str:
        """Give the ENI moto created (with a random address outside the subnet) a free private
        address of the instance's subnet, as DescribeTasks shows it in ``attachments``."""
        ec2 = self.world.ec2
        instance = ec2.get_instance_by_id(node.instance_id)
        subnet = ec2.get_subnet(instance.subnet_id)
        taken = self._addresses | {i.private_ip for r in ec2.reservations.values() for i in r.instances if getattr(i, "private_ip", None)}
        # From the top of the subnet down (moto hands instances random addresses); AWS reserves
        # the first four and the last (https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html).
        network = ipaddress.ip_network(subnet.cidr_block)
        candidates = (str(network.broadcast_address - offset) for offset in range(1, network.num_addresses - 4))
        address = next(a for a in candidates if a not in taken)
        self._addresses.add(address)
        for attachment in task.attachments:
            details = {d["name"]: d for d in attachment["details"]}
            details["privateIPv4Address"]["value"] = address
            eni = ec2.get_network_interface(details["networkInterfaceId"]["value"])
            eni.private_ip_address = address
            eni.private_ip_addresses = [{"Primary": True, "PrivateIpAddress": address}]
        task.containers[0].network_interfaces = [{"attachmentId": a["id"], "privateIpv4Address": address} for a in task.attachments]
        return address

    def _adopt(self) -> None:
        """Track the standalone tasks moto's RunTask placed on our container instances (moto
        checks resources, picks ACTIVE instances only, and then advances a task's status on
        every DescribeTasks): from here on they hold resources, count, start like service tasks
        and stop only through StopTask or with their instance."""
        world = self.world
        nodes = {node.arn: node for node in world.agent.nodes.values()}
        for cluster_name, tasks in world.ecs.tasks.items():
            for arn, task in list(tasks.items()):
                node = nodes.get(task.container_instance_arn or "")
                if arn in self.tasks or node is None or task.desired_status != RUNNING:
                    continue
                task.__class__ = ServiceTask
                task_definition = world.ecs.describe_task_definition(task.task_definition_arn)
                needs = needs_of(task_definition)
                if needs.network_mode == "awsvpc":
                    bindings = tuple(Binding(c, cp, cp) for c, cp, _ in needs.ports)
                else:
                    # Dynamic host ports as the agent would pick them (moto reserves "0").
                    bindings = self._bind(needs, self._usage().get(node.instance_id, (0, 0, set()))[2]) or ()
                if needs.network_mode != "awsvpc":
                    task.containers[0].network_bindings = [
                        {"bindIP": "0.0.0.0", "containerPort": b.container_port, "hostPort": b.host_port, "protocol": "tcp"}  # noqa: S104 - ECS reports this, no socket
                        for b in bindings
                    ]
                task.availability_zone = node.availability_zone
                task.created_at = world.datetime()
                task.cpu, task.memory = str(needs.cpu), str(needs.memory)
                task.connectivity = "CONNECTED"
                task.version = 0
                stop_timeout = max(
                    [float(c["stopTimeout"]) for c in task_definition.container_definitions if c.get("stopTimeout")] or [node.stop_timeout]
                )
                run = Run(
                    arn=arn,
                    service="",
                    cluster=cluster_name,
                    instance_id=node.instance_id,
                    node_arn=node.arn,
                    task_definition=task_definition.arn,
                    cpu=needs.cpu,
                    memory=needs.memory,
                    bindings=bindings,
                    provider=task.capacity_provider_name,
                    created_at=world.now(),
                    stop_timeout=stop_timeout,
                    network_mode=needs.network_mode,
                    ip=self._address(task, node) if needs.network_mode == "awsvpc" and task.attachments else None,
                )
                self._track(run, task)

    # stopping
    def stop(self, run: Run, reason: str, code: str) -> None:
        """Stop a task: its targets drain first (DEACTIVATING), then SIGTERM and the stop timeout."""
        if run.desired == STOPPED:
            return
        if run.status == PENDING:
            self._set(run, status=STOPPED, desired=STOPPED, stop_code=code, reason=reason)
        elif run.targets_registered and run.targets():
            self._deregister_targets(run)
            self._set(run, status=DEACTIVATING, desired=STOPPED, stop_code=code, reason=reason)
        else:
            self._set(run, status=STOPPING, desired=STOPPED, sigterm_at=self.world.now(), stop_code=code, reason=reason)

    def stop_by_user(self, task_arn: str, reason: str) -> Any:
        """StopTask on a service task: the same path, as ECS does for it."""
        run = self.runs[task_arn]
        self.stop(run, reason or "Task stopped by user", "UserInitiated")
        self.publish()  # the counts change with the desired status, at once
        return self.tasks[task_arn]

    def owns(self, task_arn: str) -> bool:
        return task_arn in self.runs

    # load balancer registration
    def _register_targets(self, run: Run) -> None:
        world = self.world
        registered = []
        for tg_arn, target_id, port in run.targets():
            tg = world.elbv2.target_groups.get(tg_arn)
            if tg is None:
                continue
            if (getattr(tg, "target_type", "instance") == "ip") != (run.ip is not None):
                # CreateService refuses this pairing on AWS ("target type instance ... is
                # incompatible with the awsvpc network mode"); moto accepts it.
                self._say(run.service, "target_type", f"target group {tg.name} has target type {tg.target_type}, the task network mode {run.network_mode}")
                continue
            world.alb.register(tg, [{"Id": target_id, "Port": port}])
            registered.append((tg, port))
        if registered:
            self._put(attrs.evolve(run, targets_registered=True))
            service = world.ecs.services.get(run.service)
            if service is not None:
                for tg, _port in registered:
                    self._event(service, f"(service {service.name}) registered 1 targets in (target-group {tg.arn})")

    def _deregister_targets(self, run: Run) -> None:
        world = self.world
        if not run.targets_registered:
            return
        for tg_arn, instance_id, port in run.targets():
            tg = world.elbv2.target_groups.get(tg_arn)
            if tg is not None:
                world.alb.deregister(tg, [{"Id": instance_id, "Port": port}], missing_ok=True)
        self._put(attrs.evolve(self.runs[run.arn], targets_registered=False))
        service = world.ecs.services.get(run.service)
        if service is not None:
            self._event(service, f"(service {service.name}) deregistered {len(run.targets())} targets in (target-group {run.targets()[0][0]})")

    # keeping moto's view in step
    def _set(self, run: Run, *, stop_code: str | None = None, reason: str | None = None, **changes: Any) -> Run:
        before = self.runs[run.arn]
        run = attrs.evolve(before, **changes)
        self._put(run)
        task = self.tasks[run.arn]
        now = self.world.datetime()
        if run.status == RUNNING and before.status != RUNNING:
            task.started_at = task.pull_started_at = task.pull_stopped_at = now
        if run.desired == STOPPED and before.desired != STOPPED:
            task.stopping_at = now
        if run.status == STOPPED and before.status != STOPPED:
            task.stopped_at = task.execution_stopped_at = now
            self._release(task)
            # SIGTERM honoured within the stop timeout, else SIGKILL; a lost host, no exit code.
            container: Any = task.containers[0]  # moto's Container declares no exit_code
            container.exit_code = 143 if run.sigterm_at is not None else None
        if stop_code:
            task.stop_code = stop_code
        if reason:
            task.stopped_reason = reason
        if (run.status, run.desired) != (before.status, before.desired):
            self._show(run, task)
        return run

    def _release(self, task: ServiceTask) -> None:
        """A stopped task's ENI is detached and deleted; DescribeTasks still shows it, DELETED."""
        for attachment in task.attachments:
            attachment["status"] = "DELETED"
            for detail in attachment["details"]:
                if detail["name"] == "networkInterfaceId":
                    self.world.ec2.enis.pop(detail["value"], None)

    def _show(self, run: Run, task: ServiceTask) -> None:
        task._status = run.status
        task.desired_status = run.desired
        task.containers[0].last_status = run.status if run.status in (PENDING, STOPPED) else RUNNING
        task.version += 1
        self.world.record("task.status", run.arn, status=run.status, desired=run.desired, instance_id=run.instance_id, service=run.service)
        self.world.events.task_state_change(task, run)

    def publish(self) -> None:
        """Counts moto shows: services, container instances, clusters (also right after
        UpdateService, where moto sets runningCount to the new desired count)."""
        world = self.world
        by_service: dict[str, Counter[str]] = {}
        by_node: dict[str, Counter[str]] = {}
        by_cluster: dict[str, Counter[str]] = {}
        for run in self.live():
            if run.desired != RUNNING:
                # "runningTasksCount: the number of tasks on the container instance that have a
                # desired status (desiredStatus) of RUNNING"
                # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerInstance.html):
                # a task being stopped (DEACTIVATING, STOPPING) no longer counts anywhere.
                continue
            shown = PENDING if run.status == PENDING else RUNNING
            by_service.setdefault(run.service, Counter())[shown] += 1
            by_node.setdefault(run.instance_id, Counter())[shown] += 1
            by_cluster.setdefault(run.cluster, Counter())[shown] += 1
        for key, service in world.ecs.services.items():
            counts = by_service.get(key, _NO_TASKS)
            service.running_count, service.pending_count = counts[RUNNING], counts[PENDING]
            for deployment in service.deployments[:1]:
                deployment["runningCount"], deployment["pendingCount"] = counts[RUNNING], counts[PENDING]
                deployment["desiredCount"] = service.desired_count
                deployment["rolloutState"] = "COMPLETED" if self._steady.get(key) else "IN_PROGRESS"
        from ecsspot.sim.agent import RESERVED_PORTS

        used = self._usage()
        # Most instances hold the same few port sets: each one shown once, copied per instance.
        shown_ports: dict[frozenset[int], list[str]] = {}
        for instance_id, node in world.agent.nodes.items():
            container_instance = world.agent.container_instance(node)
            if container_instance is None:
                continue
            cpu, memory, ports = used.get(instance_id, (0, 0, set()))
            counts = by_node.get(instance_id, _NO_TASKS)
            container_instance.running_tasks_count = counts[RUNNING]
            container_instance.pending_tasks_count = counts[PENDING]
            for resource in container_instance.remaining_resources:
                if resource["name"] == "CPU":
                    resource["integerValue"] = node.cpu - cpu
                elif resource["name"] == "MEMORY":
                    resource["integerValue"] = node.memory - memory
                elif resource["name"] == "PORTS":
                    held = frozenset(ports)
                    if held not in shown_ports:
                        shown_ports[held] = [str(p) for p in sorted(set(RESERVED_PORTS) | held)]
                    resource["stringSetValue"] = list(shown_ports[held])
        for name, cluster in world.ecs.clusters.items():
            counts = by_cluster.get(name, _NO_TASKS)
            cluster.running_tasks_count, cluster.pending_tasks_count = counts[RUNNING], counts[PENDING]
            cluster.active_services_count = sum(
                1 for s in world.ecs.services.values() if s.cluster_name == name and s.status == "ACTIVE"
            )

    def _deployment(self, service: Any) -> str:
        return service.deployments[0]["id"] if service.deployments else "ecs-svc/0"

    def _event(self, service: Any, message: str, once: bool = False) -> None:
        # Service events, newest first, as DescribeServices shows them; repeated placement
        # failures are reported once until the service next places a task.
        key = (service.arn, message)
        if once and key in self._said:
            return
        if once:
            self._said.add(key)
        elif "has started" in message:
            self._said = {k for k in self._said if k[0] != service.arn}
        service.events.insert(0, {"id": self.world.uuid(), "createdAt": self.world.datetime(), "message": message})
        del service.events[100:]

    def _say(self, key: str, what: str, message: str) -> None:
        if (key, what) not in self._said:
            self._said.add((key, what))
            self.world.record("service.unsupported", key, reason=message)

    def runs_of(self, service_key: str, statuses: Iterable[str] | None = None) -> list[Run]:
        wanted = set(statuses) if statuses is not None else None
        return [r for r in self.runs.values() if r.service == service_key and (wanted is None or r.status in wanted)]
