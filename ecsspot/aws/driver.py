"""The boto3 driver: runs a workflow generator against real (or moto) AWS, synchronously."""

from __future__ import annotations

import threading
from typing import Any

import boto3

from ecsspot.aws.calls import NOW, Call, Sleep, Workflow
from ecsspot.aws.clients import ClientOptions
from ecsspot.aws.errormap import map_error
from ecsspot.clock import Clock, SystemClock


class Driver:
    """Runs workflows with boto3; clients are created on first use and reused."""

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        session: boto3.Session | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.options = options or ClientOptions()
        self.clock = clock or SystemClock()
        self._session = session
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session(profile_name=self.options.profile, region_name=self.options.region)
        return self._session

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                client = self.session.client(service, **self.options.client_kwargs())
                for event, handler in self.options.event_handlers:
                    client.meta.events.register(event, handler)
                self._clients[service] = client
            return self._clients[service]

    def execute(self, call: Call) -> dict[str, Any]:
        try:
            client = self.client(call.service)
            if call.paginate:
                return client.get_paginator(call.operation).paginate(**call.params).build_full_result()
            return getattr(client, call.operation)(**call.params)
        except Exception as exc:
            mapped = map_error(exc, call.service, call.operation)
            if mapped is None:
                raise
            if call.absent and getattr(mapped, "code", None) in call.absent:
                return None
            raise mapped from exc

    def run(self, workflow: Workflow[Any]) -> Any:
        """Drive ``workflow`` to completion and return its value."""
        send: Any = None
        error: BaseException | None = None
        while True:
            try:
                request = workflow.throw(error) if error is not None else workflow.send(send)
            except StopIteration as stop:
                return stop.value
            send, error = None, None
            try:
                send = self._handle(request)
            except Exception as exc:  # mapped AWS errors go back into the workflow
                error = exc

    def _handle(self, request: Any) -> Any:
        if isinstance(request, Call):
            return self.execute(request)
        if isinstance(request, tuple):
            # boto3 is blocking: run a batch in order (the async driver runs it concurrently).
            return tuple(self.execute(c) for c in request)
        if isinstance(request, Sleep):
            self.clock.sleep(request.seconds)
            return self.clock.now()
        if request is NOW:
            return self.clock.now()
        raise TypeError(f"workflow yielded {request!r}")
