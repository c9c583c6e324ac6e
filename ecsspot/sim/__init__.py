"""ecsspot's AWS behaviour layer over moto: spot, ECS agent and scheduler, Auto Scaling, ECS
cluster auto scaling (opt-in), ALB, EventBridge, on a seeded virtual clock. See :class:`Simulator`; the modules are named after what
they simulate, and :mod:`ecsspot.sim.seam` lists every change made to moto.
"""

from ecsspot.sim.eventbridge import Invocation, LambdaContext
from ecsspot.sim.simulator import Simulator
from ecsspot.sim.spot import Split, purchase_split
from ecsspot.sim.traffic import TrafficStats
from ecsspot.sim.world import Machine, Record, Timings

__all__ = [
    "Invocation",
    "LambdaContext",
    "Machine",
    "Record",
    "Simulator",
    "Split",
    "Timings",
    "TrafficStats",
    "purchase_split",
]
