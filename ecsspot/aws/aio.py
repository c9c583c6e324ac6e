"""The aiobotocore driver: the same workflows, the same batch rule, on asyncio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from ecsspot.aws.calls import NOW, Call, Report, Service, Settle, Sleep, Workflow
from ecsspot.aws.clients import ClientOptions
from ecsspot.aws.errormap import map_error
from ecsspot.aws.stepper import INTERRUPTIONS, Stepper, batch_calls
from ecsspot.clock import Clock, SystemClock
from ecsspot.errors import EcsspotError

T = TypeVar("T")
#: Cancellation of the task interrupts a workflow too (its cleanup runs, as for Ctrl-C).
_INTERRUPTIONS: tuple[type[BaseException], ...] = (*INTERRUPTIONS, asyncio.CancelledError)


class AsyncDriver:
    """Runs workflows with aiobotocore. Use as an async context manager (clients are closed)."""

    def __init__(
        self,
        options: ClientOptions | None = None,
        *,
        session: Any = None,
        clock: Clock | None = None,
        on_report: Callable[[Report], None] | None = None,
    ) -> None:
        self.options = options or ClientOptions()
        self.clock = clock or SystemClock()
        #: Receives the workflows' progress :class:`~ecsspot.aws.calls.Report`\ s (None: dropped).
        self.on_report = on_report
        self._session = session
        self._clients: dict[Service, Any] = {}
        self._client_lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> AsyncDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._clients.clear()

    async def client(self, service: Service) -> Any:
        async with self._client_lock:
            if service not in self._clients:
                if self._session is None:
                    from aiobotocore.session import (
                        AioSession,  # optional dependency: the `async` extra
                    )

                    from ecsspot.aws.clients import shared_loader

                    self._session = AioSession(profile=self.options.profile)
                    self._session.register_component("data_loader", shared_loader())
                client = await self._stack.enter_async_context(
                    self._session.create_client(service, **self.options.client_kwargs())
                )
                for event, handler in self.options.event_handlers:
                    client.meta.events.register(event, handler)
                self._clients[service] = client
            return self._clients[service]

    async def execute(self, call: Call) -> Any:
        """One call's response; its failure raised as an :class:`~ecsspot.errors.EcsspotError`."""
        try:
            client = await self.client(call.service)
            if call.paginate:
                return await client.get_paginator(call.operation).paginate(**call.params).build_full_result()
            return await getattr(client, call.operation)(**call.params)
        except Exception as exc:
            mapped = map_error(exc, call.service, call.operation)
            if call.is_absent(mapped):
                return None
            raise mapped from exc

    async def run(self, workflow: Workflow[T]) -> T:
        """Drive ``workflow`` to completion and return its value."""
        stepper = Stepper(workflow, self.on_report)
        request = stepper.start()
        while not stepper.done:
            try:
                answer = await self._handle(request)
            except _INTERRUPTIONS as exc:  # the workflow's cleanup still runs
                request = stepper.interrupt(exc)
                continue
            request = stepper.feed(request, answer)
        return stepper.value

    async def _outcome(self, call: Call) -> Any:
        try:
            return await self.execute(call)
        except EcsspotError as exc:
            return exc

    async def _handle(self, request: Any) -> Any:
        if isinstance(request, Call):
            return await self._outcome(request)
        if isinstance(request, tuple | Settle):
            # gather without return_exceptions: only an interruption or a bug escapes _outcome.
            return tuple(await asyncio.gather(*(self._outcome(c) for c in batch_calls(request))))
        if isinstance(request, Sleep):
            await self.clock.asleep(request.seconds)
            return self.clock.now()
        if request is NOW:
            return self.clock.now()
        raise TypeError(f"workflow yielded {request!r}")
