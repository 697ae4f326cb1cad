"""SQLModel tables: the whole state of KomInn lives here (no in-process state for user input).

Timestamps are timezone-aware UTC (`utcnow()`); SQLModel stores them as UTC on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now: one convention for both databases."""
    return datetime.now(UTC)


class Person(SQLModel, table=True):
    """One identity on one channel (a Telegram user, a Slack user, a terminal user)."""

    __tablename__ = "person"
    __table_args__ = (UniqueConstraint("channel", "channel_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    channel_user_id: str = Field(max_length=100)
    chat_id: str | None = Field(default=None, max_length=100)
    display_name: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=5)
    follow_up_consent: bool | None = None
    invite_consent: bool | None = None
    # Web citizens may give an address at the follow-up step: their notices then go by e-mail.
    email: str | None = Field(default=None, max_length=254)
    created_at: datetime = Field(default_factory=utcnow)
    erased_at: datetime | None = None


class Campaign(SQLModel, table=True):
    """An idea competition (idékonkurranse): the municipality asks a question."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    question: str = Field(sa_column=Column(Text, nullable=False))
    text: str | None = Field(default=None, sa_column=Column(Text))
    focus_area: str | None = Field(default=None, max_length=100)
    opens_at: datetime
    closes_at: datetime
    closed_at: datetime | None = None
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    outcome_at: datetime | None = None


class Idea(SQLModel, table=True):
    """An idea; its public reference is `KI-<id>`."""

    __tablename__ = "idea"
    # The public board (adapters/web/board.py) lists newest first, filtered by status or focus
    # area: each has an index that serves the order too (migration 0002_web); both filters
    # together, and every count, are served by one covering index over the filters, the order
    # and `book.public_clause`'s columns, without reading the table (migration 0004_board).
    __table_args__ = (Index("ix_idea_status_created", "status", "created_at"),
                      Index("ix_idea_created_id", "created_at", "id"),
                      Index("ix_idea_area_created", "focus_area", "created_at"),
                      Index("ix_idea_board_count", "status", "focus_area", "created_at", "id",
                            "hidden_at", "published_at"))

    id: int | None = Field(default=None, primary_key=True, sa_column_kwargs={"autoincrement": True})
    title: str = Field(max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    focus_area: str | None = Field(default=None, max_length=100)
    place: str | None = Field(default=None, max_length=300)
    latitude: float | None = None
    longitude: float | None = None
    channel: str = Field(max_length=20)
    status: str = Field(default="new", max_length=20, index=True)
    merged_into_id: int | None = Field(default=None, foreign_key="idea.id")
    author_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    chosen: bool = False
    public_note: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    status_changed_at: datetime = Field(default_factory=utcnow)
    # Public pages (bot/ideas/book.py `public_clause`): hidden by a moderator with a reason;
    # published once a moderator moved it or pressed "Publiser" (KOMINN_PUBLISH=after-review).
    hidden_at: datetime | None = None
    hidden_reason: str | None = Field(default=None, sa_column=Column(Text))
    published_at: datetime | None = None


class StatusChange(SQLModel, table=True):
    """Audit row for every lifecycle move (who, when, from, to, note)."""

    __tablename__ = "status_change"

    id: int | None = Field(default=None, primary_key=True)
    idea_id: int = Field(foreign_key="idea.id", index=True)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    at: datetime = Field(default_factory=utcnow)
    by: str = Field(max_length=100)
    note: str | None = Field(default=None, sa_column=Column(Text))


class Support(SQLModel, table=True):
    """A person backs an idea (instead of submitting a duplicate)."""

    __tablename__ = "support"
    __table_args__ = (UniqueConstraint("idea_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    idea_id: int = Field(foreign_key="idea.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class DialogState(SQLModel, table=True):
    """Where a person is in a conversation, so a restart resumes at the same step."""

    __tablename__ = "dialog_state"

    channel: str = Field(primary_key=True, max_length=20)
    user_id: str = Field(primary_key=True, max_length=100)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    flow: str | None = Field(default=None, max_length=40)
    step: str | None = Field(default=None, max_length=40)
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    token: int = 0
    started_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    reminded_at: datetime | None = None


class ProcessedUpdate(SQLModel, table=True):
    """An incoming update handled once; its replies are kept until the adapter delivered them,
    so a redelivered update (after a crash) re-sends the answer instead of redoing the work.

    `sending_until`: the lease of whoever is sending the replies (the worker that handled the
    update, or one that took them over): until then nobody else sends them; after it, one
    worker may take them with a conditional UPDATE. Cleared once delivered."""

    __tablename__ = "processed_update"
    __table_args__ = (Index("ix_processed_update_user_at", "channel", "user_id", "at"),
                      Index("ix_processed_update_sending", "sending_until"))

    channel: str = Field(primary_key=True, max_length=20)
    update_id: str = Field(primary_key=True, max_length=100)
    user_id: str | None = Field(default=None, max_length=100)
    replies: str | None = Field(default=None, sa_column=Column(Text))
    delivered_at: datetime | None = None
    at: datetime = Field(default_factory=utcnow, index=True)
    sending_until: datetime | None = None


class Outbox(SQLModel, table=True):
    """A message to send later (follow-ups, notices), written in the transaction that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    dedupe_key: str = Field(max_length=200, unique=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    channel: str = Field(max_length=20)
    address: str | None = Field(default=None, max_length=100)
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=10)
    due_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class DuplicateCandidate(SQLModel, table=True):
    """A suspected duplicate pair waiting for (or decided by) a moderator."""

    __tablename__ = "duplicate_candidate"
    __table_args__ = (UniqueConstraint("idea_a_id", "idea_b_id"),)

    id: int | None = Field(default=None, primary_key=True)
    idea_a_id: int = Field(foreign_key="idea.id", index=True)
    idea_b_id: int = Field(foreign_key="idea.id", index=True)
    score: float = 0.0
    state: str = Field(default="pending", max_length=20, index=True)
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class BenefitAnswer(SQLModel, table=True):
    """The benefit check 30 days after realisation: did it help? (yes / partly / no)."""

    __tablename__ = "benefit_answer"
    __table_args__ = (UniqueConstraint("idea_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    idea_id: int = Field(foreign_key="idea.id", index=True)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    answer: str = Field(max_length=10)
    comment: str | None = Field(default=None, sa_column=Column(Text))
    at: datetime = Field(default_factory=utcnow)


class CollabInvite(SQLModel, table=True):
    """An invitation to collaborate on a `useful` idea (e.g. a workshop)."""

    __tablename__ = "collab_invite"

    id: int | None = Field(default=None, primary_key=True)
    idea_id: int = Field(foreign_key="idea.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class CollabAnswer(SQLModel, table=True):
    __tablename__ = "collab_answer"
    __table_args__ = (UniqueConstraint("invite_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    invite_id: int = Field(foreign_key="collab_invite.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    answer: str = Field(max_length=10)
    at: datetime = Field(default_factory=utcnow)


class AppSecret(SQLModel, table=True):
    """A secret KomInn generates once and keeps across restarts and workers (e.g. the web
    session signing key when KOMINN_WEB_SECRET is not set)."""

    __tablename__ = "app_secret"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class SendPace(SQLModel, table=True):
    """One bot's send ceiling shared by every worker (PostgreSQL): `next_at` (epoch seconds on
    the database's clock) is the next free slot on an evenly spaced grid; a send takes it with
    one UPDATE … RETURNING and waits for it (see adapters/telegram/pacing.py)."""

    __tablename__ = "send_pace"

    name: str = Field(primary_key=True, max_length=40)
    next_at: float = 0.0
    slot: float = 0.0  # the slot the last UPDATE granted (-1: none); read through RETURNING


class RateHit(SQLModel, table=True):
    """Requests per client address and minute, shared by every worker (the web chat's
    per-address limit, adapters/web/security.py). `key` is a keyed hash of the address, not
    the address; rows older than the previous minute are deleted."""

    __tablename__ = "rate_hit"

    key: str = Field(primary_key=True, max_length=64)
    bucket: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False},
                        sa_type=BigInteger)  # epoch seconds // window
    hits: int = 0


class JobRun(SQLModel, table=True):
    """When a periodic job last ran on any worker (epoch seconds, the database's clock): a
    worker runs a job's tick only if it wins the conditional UPDATE that moves `ran_at`, so a
    scan runs once per tick across workers. `due` = a nudge: run at the next look, whenever
    the last run was (a competition created by another process)."""

    __tablename__ = "job_run"

    name: str = Field(primary_key=True, max_length=40)
    ran_at: float = 0.0
    due: bool = False


class DedupDecision(SQLModel, table=True):
    """A moderator's triage decision kept as a labelled pair for the duplicate detector: the
    two texts as they were when decided (no person, no moderator id), duplicate or not."""

    __tablename__ = "dedup_decision"

    id: int | None = Field(default=None, primary_key=True)
    candidate_id: int = Field(foreign_key="duplicate_candidate.id", unique=True)
    title_a: str = Field(sa_column=Column(Text, nullable=False))
    description_a: str = Field(sa_column=Column(Text, nullable=False))
    title_b: str = Field(sa_column=Column(Text, nullable=False))
    description_b: str = Field(sa_column=Column(Text, nullable=False))
    duplicate: bool
    score: float = 0.0
    decided_at: datetime = Field(default_factory=utcnow)


class DedupSetting(SQLModel, table=True):
    """A calibrated detector setting (`kominn dedup calibrate --apply`), overriding the
    environment's default for every worker; `--reset` deletes the rows."""

    __tablename__ = "dedup_setting"

    name: str = Field(primary_key=True, max_length=50)
    value: float
    updated_at: datetime = Field(default_factory=utcnow)
