"""``ecsspot sim serve``: the simulator as a local AWS endpoint for the CLI, the Lambdas and Terraform."""

from __future__ import annotations

import logging
import shlex
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from ecsspot.errors import InputError
from ecsspot_cli import output

DEFAULT_REGION = "us-east-1"

if TYPE_CHECKING:
    from ecsspot_cli.main import Context


@click.group()
def sim() -> None:
    """The AWS simulator (moto + ecsspot.sim, the `sim` extra)."""


@sim.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port on 127.0.0.1 (0: a free one).")
@click.option("--speed", type=click.FloatRange(0.1, 1000), default=1.0, show_default=True, help="Virtual seconds per real second.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the simulated world.")
@click.option("--network", is_flag=True, help="Create a VPC, three subnets, a security group and the ecsInstanceRole instance profile.")
@click.pass_obj
def serve(obj: Context, port: int, speed: float, seed: int, network: bool) -> None:
    """Serve the simulator on 127.0.0.1 until Ctrl-C (or SIGTERM).

    Prints the environment that points ecsspot, boto3 and Terraform at it (as `export` lines, or
    one JSON document with --output json), then keeps the world's clock running. The global
    --region names the simulated region (default us-east-1).
    """
    try:
        from ecsspot.sim.serve import Served, describe
        from ecsspot.sim.serve import serve as run
    except ImportError as exc:  # moto is the `sim` extra
        raise InputError(f"ecsspot sim serve needs the simulator: pip install 'ecsspot[sim]' ({exc})") from None
    # moto's server logs every request through werkzeug: the CLI's stderr is for ecsspot's lines.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    stop = threading.Event()

    def stopping(signum: int, _frame: Any) -> None:
        stop.set()

    # Ctrl-C and SIGTERM stop the server cleanly (exit 0): stopping is how a server ends.
    previous = {s: signal.signal(s, stopping) for s in (signal.SIGINT, signal.SIGTERM)}

    def ready(served: Served) -> None:
        if obj.json:
            output.emit_document(describe(served))
        else:
            for name, value in served.environment().items():
                click.echo(f"export {name}={shlex.quote(value)}")
            if served.network is not None:
                n = served.network
                click.echo(f"# network: {n.vpc_id}; subnets {' '.join(n.subnets)}; security group {n.security_group}; instance profile {n.instance_profile}")
        sys.stdout.flush()  # a reader waits for these lines before it starts
        output.progress(
            f"simulator serving on {served.endpoint_url} ({served.region}, {served.speed:g} virtual s per s); Ctrl-C stops it",
            quiet=obj.verbosity < 0,
        )

    try:
        run(ready=ready, stop=stop, port=port, speed=speed, seed=seed, region=obj.region or DEFAULT_REGION, network=network)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    output.progress("simulator stopped", quiet=obj.verbosity < 0)


COMMANDS = [sim]
