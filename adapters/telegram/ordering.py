"""Per-chat order: updates of one chat are handled and answered in arrival order, different
chats concurrently.

Each update gets a ticket in its chat's line when it is queued (`InFlight.admit`); handling
waits for the previous update of the chat to be handled, sending waits for its replies to be
sent. The two stages are separate so a slow send (flood control) in one chat never holds up
the poll loop, which waits only for a batch to be *handled* before it confirms it. An update
id already in flight in this process is not admitted twice (a webhook retry or a `getUpdates`
overlap arriving while the original is still being answered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram.ext import BaseUpdateProcessor

MAX_CONCURRENT_UPDATES = 512


def _follow(previous: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
    """Resolve `mine` once `previous` is resolved: a stage is done only after its predecessor."""
    if mine.done():
        return
    if previous is None or previous.done():
        mine.set_result(None)
    else:
        previous.add_done_callback(lambda _: None if mine.done() else mine.set_result(None))


class Ticket:
    """An update's place in its chat's line: handled after the previous update was handled,
    answered after the previous update was answered."""

    def __init__(self, key: int | str, previous: Ticket | None) -> None:
        loop = asyncio.get_running_loop()
        self.key = key
        self._previous_handled = previous.handled if previous else None
        self._previous_sent = previous.sent if previous else None
        self.handled: asyncio.Future[None] = loop.create_future()
        self.sent: asyncio.Future[None] = loop.create_future()

    async def turn_to_handle(self) -> None:
        if self._previous_handled is not None:
            await asyncio.shield(self._previous_handled)

    async def turn_to_send(self) -> None:
        if self._previous_sent is not None:
            await asyncio.shield(self._previous_sent)

    def mark_handled(self) -> None:
        _follow(self._previous_handled, self.handled)

    def mark_sent(self) -> None:
        self.mark_handled()
        _follow(self._previous_sent, self.sent)


class ChatLines:
    """Tickets per chat; a chat's line is forgotten when its last update is answered."""

    def __init__(self) -> None:
        self._tails: dict[int | str, Ticket] = {}

    def enter(self, key: int | str) -> Ticket:
        ticket = Ticket(key, self._tails.get(key))
        self._tails[key] = ticket
        ticket.sent.add_done_callback(lambda _: self._leave(ticket))
        return ticket

    def _leave(self, ticket: Ticket) -> None:
        if self._tails.get(ticket.key) is ticket:
            del self._tails[ticket.key]

    def __len__(self) -> int:
        return len(self._tails)


class InFlight:
    """The updates admitted in this process and not yet answered, by update id, each with its
    ticket in its chat's line; an update leaves once it is answered."""

    def __init__(self) -> None:
        self.lines = ChatLines()
        self._tickets: dict[int, Ticket] = {}

    def admit(self, update_id: int, chat: int | str) -> Ticket | None:
        """The update's ticket, taken before it is queued; None if the same update id is
        already in flight here (a redelivery overlapping the original)."""
        if update_id in self._tickets:
            return None
        ticket = self.lines.enter(chat)
        self._tickets[update_id] = ticket
        ticket.sent.add_done_callback(lambda _: self._tickets.pop(update_id, None))
        return ticket

    def get(self, update_id: int) -> Ticket | None:
        return self._tickets.get(update_id)

    def finish(self, update_id: int) -> None:
        """The update's processing ended, however it ended: its chat need not wait for it."""
        ticket = self._tickets.get(update_id)
        if ticket is not None:
            ticket.mark_sent()

    def unanswered(self) -> list[asyncio.Future[None]]:
        """What a stop waits for: the answers still on their way."""
        return [ticket.sent for ticket in self._tickets.values()]


class TrackedProcessor(BaseUpdateProcessor):
    """Runs updates concurrently and closes each update's ticket however its processing ended
    (no handler matched, a handler failed), so neither its chat nor the poll loop waits for it."""

    def __init__(self, finish: Callable[[object], None]) -> None:
        super().__init__(MAX_CONCURRENT_UPDATES)
        self._finish = finish

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        finally:
            self._finish(update)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""
