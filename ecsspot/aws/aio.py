"""The aiobotocore driver: the same workflows, with independent calls run concurrently."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ecsspot.aws.calls import NOW, Call, Sleep, Workflow
from ecsspot.aws.clients import ClientOptions
from ecsspot.aws.errormap import map_error
from ecsspot.clock import Clock, SystemClock


class AsyncDriver:
    """Runs workflows with aiobotocore. Use as an async context manager (clients are closed)."""

    def __init__(self, options: ClientOptions | None = None, *, session: Any = None, clock: Clock | None = None) -> None:
        self.options = options or ClientOptions()
        self.clock = clock or SystemClock()
        self._session = session
        self._clients: dict[str, Any] = {}
        self._client_lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> AsyncDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._clients.clear()

    async def client(self, service: str) -> Any:
        async with self._client_lock:
            if service not in self._clients:
                if self._session is None:
                    from aiobotocore.session import AioSession  # optional dependency: the `async` extra

                    self._session = AioSession(profile=self.options.profile)
                client = await self._stack.enter_async_context(
                    self._session.create_client(service, **self.options.client_kwargs())
                )
                for event, handler in self.options.event_handlers:
                    client.meta.events.register(event, handler)
                self._clients[service] = client
            return self._clients[service]

    async def execute(self, call: Call) -> dict[str, Any]:
        try:
            client = await self.client(call.service)
            if call.paginate:
                return await client.get_paginator(call.operation).paginate(**call.params).build_full_result()
            return await getattr(client, call.operation)(**call.params)
        except Exception as exc:
            mapped = map_error(exc, call.service, call.operation)
            if mapped is None:
                raise
            if call.absent and getattr(mapped, "code", None) in call.absent:
                return None
            raise mapped from exc

    async def run(self, workflow: Workflow[Any]) -> Any:
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
                send = await self._handle(request)
            except Exception as exc:
                error = exc

    async def _handle(self, request: Any) -> Any:
        if isinstance(request, Call):
            return await self.execute(request)
        if isinstance(request, tuple):
            results = await asyncio.gather(*(self.execute(c) for c in request), return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    raise r
            return tuple(results)
        if isinstance(request, Sleep):
            await self.clock.asleep(request.seconds)
            return self.clock.now()
        if request is NOW:
            return self.clock.now()
        raise TypeError(f"workflow yielded {request!r}")
