"""The boto3 driver: runs a workflow generator against real (or moto) AWS.

The calls of a batch go out concurrently on a thread pool (boto3 clients are thread-safe), so
a "round" costs one round trip here as under aiobotocore: the Lambda's drain really is three
round trips to DRAINING and deregistered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3

from ecsspot.aws.calls import NOW, Call, Report, Service, Settle, Sleep, Workflow
from ecsspot.aws.clients import ClientOptions, botocore_session
from ecsspot.aws.errormap import map_error
from ecsspot.aws.stepper import batch_calls, drive
from ecsspot.clock import Clock, SystemClock
from ecsspot.errors import EcsspotError

#: Threads for one batch at most; botocore's connection pool is sized to match (clients.py). The
#: largest round of a drain of 1,000 instances is 100 UpdateContainerInstancesState (10 each)
#: plus one DeregisterTargets per group (up to 1,000 targets each): it goes out in one wave, not two.
MAX_CONCURRENCY = 128

T = TypeVar("T")


class Driver:
    """Runs workflows with boto3; clients are created on first use and reused."""

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        session: boto3.Session | None = None,
        clock: Clock | None = None,
        on_report: Callable[[Report], None] | None = None,
    ) -> None:
        self.options = options or ClientOptions()
        self.clock = clock or SystemClock()
        #: Receives the workflows' progress :class:`~ecsspot.aws.calls.Report`\ s (None: dropped).
        self.on_report = on_report
        self._session = session
        self._clients: dict[Service, Any] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session(botocore_session=botocore_session(self.options.profile), region_name=self.options.region)
        return self._session

    def client(self, service: Service) -> Any:
        with self._lock:
            if service not in self._clients:
                client = self.session.client(service, **self.options.client_kwargs())
                for event, handler in self.options.event_handlers:
                    client.meta.events.register(event, handler)
                self._clients[service] = client
            return self._clients[service]

    def execute(self, call: Call) -> Any:
        """One call's response; its failure raised as an :class:`~ecsspot.errors.EcsspotError`."""
        try:
            client = self.client(call.service)
            if call.paginate:
                return client.get_paginator(call.operation).paginate(**call.params).build_full_result()
            return getattr(client, call.operation)(**call.params)
        except Exception as exc:
            mapped = map_error(exc, call.service, call.operation)
            if call.is_absent(mapped):
                return None
            raise mapped from exc

    def run(self, workflow: Workflow[T]) -> T:
        """Drive ``workflow`` to completion and return its value."""
        return drive(workflow, self._handle, self.on_report)

    def _outcome(self, call: Call) -> Any:
        try:
            return self.execute(call)
        except EcsspotError as exc:
            return exc

    def _handle(self, request: Any) -> Any:
        if isinstance(request, Call):
            return self._outcome(request)
        if isinstance(request, tuple | Settle):
            calls = batch_calls(request)
            if len(calls) <= 1:
                return tuple(self._outcome(c) for c in calls)
            # Every call is sent whatever the others answer; result() re-raises only what is not an
            # AWS outcome (an interruption, a bug), after which the stepper runs the cleanup.
            futures = [self._executor().submit(self._outcome, c) for c in calls]
            return tuple(f.result() for f in futures)
        if isinstance(request, Sleep):
            self.clock.sleep(request.seconds)
            return self.clock.now()
        if request is NOW:
            return self.clock.now()
        raise TypeError(f"workflow yielded {request!r}")

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                # Threads are started on demand and reused, so a pool this size costs only what a batch uses.
                self._pool = ThreadPoolExecutor(max_workers=MAX_CONCURRENCY, thread_name_prefix="ecsspot")
            return self._pool

    def close(self) -> None:
        """Stop the batch threads (they also stop at interpreter exit)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
