"""The vocabulary of a dialog step: state, context (read-only ports), effects and outcome,
and the conversation's table of commands, buttons and flows.

A step is pure: `step(state, incoming, ctx) -> Outcome`. It reads only through `ctx.ports`,
and everything it wants changed is an effect the engine applies in the same transaction that
saves the new state. What the conversation understands is one `Conversation`, joined from the
`Part` each dialog module exports (`Conversation.of(citizen.PART, campaigns.PART, …)`); it
travels in the context, so no module fills another's table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from dialogs.lifecycle import Status
from dialogs.types import Incoming, Reply


class Texts(Protocol):
    """Translate a text key in one language: `t("submit.ask_title")`. A text with a count
    takes it as `n` and comes in the form for that count (`t("limit.ideas_per_day", n=1)`)."""

    language: str

    def __call__(self, key: str, /, **params: object) -> str: ...


@dataclass(frozen=True)
class IdeaView:
    number: int
    ref: str
    title: str
    description: str
    status: Status
    focus_area: str | None
    place: str | None
    created_at: datetime
    status_changed_at: datetime
    public_note: str | None
    supporters: int
    merged_into: str | None = None
    campaign_id: int | None = None


@dataclass(frozen=True)
class SimilarIdea:
    number: int
    ref: str
    title: str
    status: Status
    score: float


@dataclass(frozen=True)
class PersonView:
    id: int | None
    language: str | None
    follow_up_consent: bool | None
    invite_consent: bool | None


@dataclass(frozen=True)
class CampaignView:
    id: int
    title: str
    question: str
    text: str | None
    focus_area: str | None
    opens_at: datetime
    closes_at: datetime
    is_open: bool


class Ports(Protocol):
    """What a step may ask. Implemented in `bot/conversation/ports.py` over the database."""

    def idea(self, number: int) -> IdeaView | None:
        """An idea the person may see — public, or their own; None for any other."""
        ...

    def my_ideas(self) -> Sequence[tuple[IdeaView, str]]:
        """The person's ideas and supported ideas, newest first, with 'author'/'supporter'."""
        ...

    def similar(self, title: str, description: str, limit: int = 3) -> Sequence[SimilarIdea]: ...

    def focus_areas(self) -> Sequence[str]: ...

    def asks_email(self) -> bool:
        """Whether follow-ups may go by e-mail for this person (the web chat, SMTP set up)."""
        ...

    def email_address(self, text: str) -> str | None:
        """The e-mail address typed, normalised; None when it is not one."""
        ...

    def personal_data(self) -> dict[str, Any]: ...

    def ideas_submitted_today(self) -> int: ...

    def campaign(self, campaign_id: int) -> CampaignView | None: ...

    def open_campaigns(self) -> Sequence[CampaignView]: ...

    def ideas_in_progress(self, limit: int = 10) -> Sequence[IdeaView]: ...

    def translator(self, language: str) -> Texts: ...


@dataclass(frozen=True)
class Context:
    person: PersonView
    t: Texts
    ports: Ports
    now: datetime
    dialogs: Conversation
    max_ideas_per_day: int = 5
    zone: tzinfo = UTC

    def date(self, moment: datetime) -> str:
        """A date as people here write it (dd.mm.yyyy, in the municipality's time zone)."""
        return moment.astimezone(self.zone).strftime("%d.%m.%Y")

    def open_question(self, state: State) -> Reply:
        """The current step of the conversation in progress, asked again (after a detour)."""
        return self.dialogs.flows[state.flow or ""].prompt(state, self)


@dataclass(frozen=True)
class State:
    """A person's place in a conversation; `data` holds what they typed so far (JSON-able).

    `token` changes on every move to a new step; buttons carry it, so a button from an older
    message is recognised as expired instead of being applied to the wrong question.
    """

    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    token: int = 0

    @property
    def idle(self) -> bool:
        return self.flow is None

    def goto(self, step: str, *, flow: str | None = None, remember: bool = True,
             **data: Any) -> State:
        """Move to `step` (of `flow`, default the current one), remembering where we were."""
        history = list(self.data.get("_history", []))
        if remember and self.step is not None and (flow is None or flow == self.flow):
            history.append(self.step)
        merged = {**self.data, **data, "_history": history}
        return replace(self, flow=flow or self.flow, step=step, data=merged,
                       token=self.token + 1)

    def back(self) -> State | None:
        history = list(self.data.get("_history", []))
        if not history:
            return None
        previous = history.pop()
        return replace(self, step=previous, data={**self.data, "_history": history},
                       token=self.token + 1)

    def cleared(self) -> State:
        return State(token=self.token + 1)


# --- effects: what the engine applies inside the step's transaction --------------------------

@dataclass(frozen=True)
class SubmitIdea:
    title: str
    description: str
    focus_area: str | None
    place: str | None
    latitude: float | None
    longitude: float | None
    similar: tuple[tuple[int, float], ...] = ()
    said_new: bool = False
    campaign_id: int | None = None


@dataclass(frozen=True)
class AddSupport:
    number: int


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class SetConsent:
    follow_up: bool | None = None
    invite: bool | None = None
    email: str | None = None  # an address for e-mail follow-ups ("" removes it)


@dataclass(frozen=True)
class ErasePerson:
    pass


@dataclass(frozen=True)
class Custom:
    """An effect of a feature module (e.g. a benefit-check answer): `kind` names the engine
    handler registered for it, `data` is its JSON-able argument."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


Effect = SubmitIdea | AddSupport | SetLanguage | SetConsent | ErasePerson | Custom


@dataclass(frozen=True)
class Outcome:
    state: State
    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = ()


Step = Callable[[State, "Any", Context], Outcome]
CommandHandler = Callable[[State, str, Context], Outcome]
ActionHandler = Callable[[State, list[str], Context], Outcome]


@dataclass(frozen=True)
class Flow:
    """A multi-step conversation: how to re-ask its current step and how to take an answer
    (typed text with `action=None`, or a button's action)."""

    prompt: Callable[[State, Context], Reply]
    on_input: Callable[[State, Incoming, str | None, Context], Outcome]


@dataclass(frozen=True)
class Part:
    """What one dialog module adds to the conversation: slash commands by name, global
    buttons (`g:<name>:…`, valid however old the message), flows by name, and `/start
    <payload>` deep links by the payload's first character."""

    commands: Mapping[str, CommandHandler] = field(default_factory=dict)
    actions: Mapping[str, ActionHandler] = field(default_factory=dict)
    flows: Mapping[str, Flow] = field(default_factory=dict)
    start_payloads: Mapping[str, CommandHandler] = field(default_factory=dict)


def joined(what: str, tables: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Tables contributed by several parts as one, refusing a name claimed twice (two
    features answering one command would depend on the order they were listed in)."""
    merged: dict[str, Any] = {}
    for table in tables:
        for key, value in table.items():
            if key in merged:
                raise ValueError(f"{what} {key!r} is contributed twice")
            merged[key] = value
    return merged


@dataclass(frozen=True)
class Conversation:
    """Everything the citizen conversation understands, joined from the parts of the features
    a runtime has. A name claimed by two parts is a wiring error, raised at start."""

    commands: Mapping[str, CommandHandler]
    actions: Mapping[str, ActionHandler]
    flows: Mapping[str, Flow]
    start_payloads: Mapping[str, CommandHandler]

    @classmethod
    def of(cls, *parts: Part) -> Conversation:
        return cls(**{name: joined(name[:-1], (getattr(part, name) for part in parts))
                      for name in ("commands", "actions", "flows", "start_payloads")})
