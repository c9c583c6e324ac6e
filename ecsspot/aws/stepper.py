"""The one loop that drives a workflow generator; both drivers use it (no I/O here).

A driver asks :meth:`Stepper.start` for the first request, answers it, and hands the answer to
:meth:`Stepper.feed` for the next, until :attr:`Stepper.done`. How an answer reaches the
generator is decided here, once, so the sync and async drivers cannot drift apart:

* a :class:`~ecsspot.aws.calls.Call`: its response is sent, its mapped error thrown;
* a tuple: every call was sent; all responses are sent as a tuple, or the first error is thrown;
* :class:`~ecsspot.aws.calls.Settle`: the outcomes are sent as they are (errors in place);
* :class:`~ecsspot.aws.calls.Report`: handed to ``on_report`` here, never to the driver, and
  answered None (a failing callback loses the report, never the workflow).

When answering fails in the driver itself (Ctrl-C, task cancellation, a driver bug: see
:data:`INTERRUPTIONS`), :meth:`Stepper.interrupt` throws that exception into the generator so
its cleanup runs, the driver keeps serving the calls the cleanup yields, and the exception is
raised again at the end: a lease is never left held because the user pressed Ctrl-C. Anything
else escaping a driver stands for the process dying, after which nothing runs (its leases
expire); workflows therefore never yield on ``GeneratorExit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ecsspot.aws.calls import Call, Report, Settle, Workflow
from ecsspot.errors import EcsspotError

T = TypeVar("T")
#: What a driver throws into the workflow for its cleanup (the async driver adds cancellation).
INTERRUPTIONS: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit, Exception)


class Stepper(Generic[T]):
    """Drives one workflow; holds no I/O, only the generator and how it ended."""

    def __init__(self, workflow: Workflow[T], on_report: Callable[[Report], None] | None = None) -> None:
        self._workflow = workflow
        self._on_report = on_report
        self._interrupted: BaseException | None = None
        # Boxed: a workflow may return None, which must not read as "not done yet".
        self._returned: tuple[T] | None = None

    @property
    def done(self) -> bool:
        return self._returned is not None

    @property
    def value(self) -> T:
        """What the workflow returned (once :attr:`done`)."""
        if self._returned is None:
            raise RuntimeError("the workflow has not returned yet")
        return self._returned[0]

    def start(self) -> Any:
        """The first request (None when the workflow returned at once; see :attr:`done`)."""
        return self._resume(None, None)

    def feed(self, request: Any, answer: Any) -> Any:
        """Deliver the driver's ``answer`` to ``request``; returns the next request."""
        if isinstance(request, Call):
            if isinstance(answer, EcsspotError):
                return self._resume(None, answer)
            return self._resume(answer, None)
        if isinstance(request, tuple):
            error = next((a for a in answer if isinstance(a, EcsspotError)), None)
            return self._resume(None, error) if error is not None else self._resume(tuple(answer), None)
        if isinstance(request, Settle):
            return self._resume(tuple(answer), None)
        return self._resume(answer, None)

    def interrupt(self, exc: BaseException) -> Any:
        """Throw ``exc`` (raised while answering) into the workflow; returns its cleanup's next request.

        Once the workflow ends, however it ends, ``exc`` is raised again (a second interruption
        during the cleanup replaces it).
        """
        self._interrupted = exc
        return self._resume(None, exc)

    def _resume(self, send: Any, error: BaseException | None) -> Any:
        try:
            request = self._workflow.throw(error) if error is not None else self._workflow.send(send)
            while isinstance(request, Report):
                try:
                    self._tell(request)
                except (KeyboardInterrupt, SystemExit) as exc:
                    # Ctrl-C while the progress line was drawn: the workflow's cleanup still runs,
                    # as for one that arrives while the driver waits on AWS (see interrupt()).
                    self._interrupted = exc
                    request = self._workflow.throw(exc)
                    continue
                request = self._workflow.send(None)
            return request
        except StopIteration as stop:
            if self._interrupted is not None:
                raise self._interrupted from None
            self._returned = (stop.value,)
            return None

    def _tell(self, report: Report) -> None:
        if self._on_report is None:
            return
        try:
            self._on_report(report)
        except Exception:  # noqa: BLE001 - a watcher that fails (a closed stderr) must not stop a drain
            return


def drive(workflow: Workflow[T], handle: Callable[[Any], Any], on_report: Callable[[Report], None] | None = None) -> T:
    """Drive ``workflow`` to its end with a blocking ``handle`` (request → answer) and return its
    value: the loop of the boto3 driver and of ``ecsspot.testing`` (the aiobotocore driver awaits
    its handler, so it writes the same loop with ``await``)."""
    stepper = Stepper(workflow, on_report)
    request = stepper.start()
    while not stepper.done:
        try:
            answer = handle(request)
        except INTERRUPTIONS as exc:  # Ctrl-C and the like: the workflow's cleanup still runs
            request = stepper.interrupt(exc)
            continue
        request = stepper.feed(request, answer)
    return stepper.value


def batch_calls(request: Any) -> tuple[Call, ...]:
    """The calls of a batch request (a tuple or :class:`Settle`)."""
    return request.calls if isinstance(request, Settle) else tuple(request)
