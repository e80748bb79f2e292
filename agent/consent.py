"""Asking the local user whether a technician may connect.

A request is bound to one session id; an answer for another session opens
nothing. No answer before the timeout means no.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("qp.agent")

APPROVED, DENIED, TIMEOUT = "approved", "denied", "timeout"
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class ConsentRequest:
    session_id: str
    technician: str
    kind: str
    reason: str = ""  # the request/ticket the technician works on

    def question(self) -> str:
        why = f" for {self.reason!r}" if self.reason else ""
        return f"{self.technician} asks to open a {self.kind} session{why}. Allow?"


@dataclass
class _Pending:
    request: ConsentRequest
    answer: asyncio.Future[bool | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ConsentBroker:
    """Pending consent questions and their answers.

    ``sleep`` is injectable so tests decide when the timeout passes.
    """

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        notify: Callable[[ConsentRequest], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self._sleep = sleep
        self._notify = notify
        self._pending: dict[str, _Pending] = {}
        self.changed = asyncio.Event()

    def pending(self) -> list[ConsentRequest]:
        return [p.request for p in self._pending.values()]

    async def ask(self, request: ConsentRequest) -> str:
        """Wait for the user's answer: APPROVED, DENIED or TIMEOUT."""
        entry = _Pending(request)
        self._pending[request.session_id] = entry
        self.changed.set()
        if self._notify is not None:
            try:
                self._notify(request)
            except Exception as exc:  # a missing notifier must not decide consent
                log.info("consent notice for %s not shown: %s", request.session_id, exc)
        timer: asyncio.Future[None] = asyncio.ensure_future(self._sleep(self.timeout))

        def expire(_timer: asyncio.Future[None]) -> None:
            if not entry.answer.done():
                entry.answer.set_result(None)  # no answer in time means no

        timer.add_done_callback(expire)
        try:
            answer = await entry.answer
            if answer is None:
                return TIMEOUT
            return APPROVED if answer else DENIED
        finally:
            timer.cancel()
            self._pending.pop(request.session_id, None)
            self.changed.set()

    def answer(self, session_id: str, approve: bool) -> bool:
        """Answer the question for ``session_id``; False if none is pending."""
        entry = self._pending.get(session_id)
        if entry is None or entry.answer.done():
            return False
        entry.answer.set_result(approve)
        return True

    def cancel(self, session_id: str) -> None:
        """The session ended before anyone answered: the answer is no."""
        self.answer(session_id, False)


def desktop_notify(request: ConsentRequest) -> None:
    """Best effort desktop notification where the platform has one."""
    tool = shutil.which("notify-send")
    if tool:
        subprocess.Popen(
            [tool, "Quarkpulse support", request.question() + " Run: qp-agent consent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
