"""Who may moderate, and lifecycle moves made by a moderator (channel-neutral).

Moderators are listed ids plus the members of a group the chat platform knows (Slack: a user
group, looked up through an injected async function and cached briefly, so a click costs no
extra round trip and a removed moderator loses the right within a minute). A refused attempt is
logged without any text, with a hashed user id.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session, col

from bot.ideas import book
from dialogs.lifecycle import MoveNotAllowed, Status, allowed_moves, parse_status
from dialogs.refs import parse_ref
from storage.models import Idea, StatusChange, utcnow

log = logging.getLogger("kominn.moderation")

GroupFetcher = Callable[[str], Awaitable[Sequence[str]]]


def user_hash(user_id: str) -> str:
    """A stable pseudonym for logs: lets an operator count attempts without storing ids."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:12]


class Moderators:
    """`await is_moderator(user_id)`: a listed id, or a member of the moderator group."""

    def __init__(self, ids: Iterable[str], group: str | None = None,
                 fetch_group: GroupFetcher | None = None, *, ttl: float = 60.0,
                 retry_after_failure: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ids = frozenset(i.strip() for i in ids if i.strip())
        self.group = group or None
        self.fetch_group = fetch_group
        self.ttl = ttl
        self.retry_after_failure = retry_after_failure
        self.clock = clock
        self._members: frozenset[str] = frozenset()
        self._fresh_until = float("-inf")
        self._lock: asyncio.Lock | None = None

    async def is_moderator(self, user_id: str) -> bool:
        if user_id in self.ids:
            return True
        if not self.group or self.fetch_group is None:
            return False
        return user_id in await self.group_members()

    async def group_members(self) -> frozenset[str]:
        """Cached members; one lookup at a time, a failed lookup keeps the last known list."""
        if self.clock() < self._fresh_until:
            return self._members
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.clock() < self._fresh_until:
                return self._members
            assert self.group is not None and self.fetch_group is not None
            try:
                self._members = frozenset(await self.fetch_group(self.group))
                self._fresh_until = self.clock() + self.ttl
            except Exception as exc:  # noqa: BLE001 - any failure: keep the last list
                log.warning("moderator group lookup failed", extra={
                    "event": "moderator_group_failed", "status": type(exc).__name__})
                self._fresh_until = self.clock() + self.retry_after_failure
            return self._members


def log_refused(channel: str, user_id: str, action: str) -> None:
    """A non-moderator tried a moderator action: who (hashed) and what, never any text."""
    log.warning("moderator action refused", extra={
        "event": "moderator_refused", "channel": channel, "kind": action,
        "user_hash": user_hash(user_id)})


# --- lifecycle moves --------------------------------------------------------------------------

class StatusChanged(Exception):
    """The idea is no longer in the status the moderator saw (someone else moved it)."""

    def __init__(self, ref: str, now: str) -> None:
        super().__init__(f"{ref} is now {now}")
        self.ref = ref
        self.status = now


@dataclass(frozen=True)
class SetRequest:
    """`set KI-n STATUS [note]`, or `set KI-n merged KI-m [note]`."""

    ref: str
    target: Status
    note: str | None = None
    into: str | None = None


class BadRequest(ValueError):
    """What was typed cannot be a move; `key` names the text explaining why."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def parse_set(args: Sequence[str]) -> SetRequest:
    """Parse the words after `set`; raises `BadRequest` with a text key."""
    if len(args) < 2:
        raise BadRequest("slack.set_usage")
    if parse_ref(args[0]) is None:
        raise BadRequest("slack.bad_ref", ref=args[0])
    ref = f"KI-{parse_ref(args[0])}"
    try:
        target = parse_status(args[1])
    except ValueError:
        raise BadRequest("slack.bad_status", status=args[1]) from None
    rest = list(args[2:])
    into = None
    if target is Status.MERGED:
        if not rest or parse_ref(rest[0]) is None:
            raise BadRequest("slack.merge_needs_target")
        into = f"KI-{parse_ref(rest.pop(0))}"
    note = " ".join(rest).strip() or None
    if target is Status.DECLINED and not note:
        raise BadRequest("slack.decline_needs_reason")
    return SetRequest(ref=ref, target=target, note=note, into=into)


def targets(current: Status) -> list[Status]:
    """Moves offered as buttons: every allowed move except merging (that needs a second idea;
    triage or `set KI-n merged KI-m` does it)."""
    order = list(Status)
    return sorted((s for s in allowed_moves(current) if s is not Status.MERGED), key=order.index)


def move(session: Session, ideas: book.IdeaBook, request: SetRequest, *, by: str,
         expected: Status | None = None) -> StatusChange:
    """Apply a moderator's move. With `expected`, the idea must still be in that status: the
    row is claimed by a conditional UPDATE first, so two moderators moving the same idea at
    once cannot both succeed. Raises IdeaNotFound, MoveNotAllowed or StatusChanged."""
    idea = book.get_idea(session, request.ref)
    if expected is not None:
        claimed = session.exec(update(Idea)
                               .where(col(Idea.id) == idea.id,
                                      col(Idea.status) == expected.value)
                               .values(updated_at=utcnow())
                               .execution_options(synchronize_session=False))
        session.refresh(idea)
        if claimed.rowcount != 1:
            raise StatusChanged(request.ref, idea.status)
    if request.target is Status.MERGED:
        if request.into is None:
            raise MoveNotAllowed("merging needs the idea to merge into")
        into = book.get_idea(session, request.into)
        return ideas.merge(session, idea, into, by=by, note=request.note)
    return ideas.set_status(session, idea, request.target, by=by, note=request.note)
