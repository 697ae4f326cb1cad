"""What a feature contributes to KomInn, and the whole a runtime is built from.

Each feature module ends with one `FEATURE = Feature(...)` (or a `feature(settings)` when what
it contributes depends on the configuration): its part of the citizen conversation, the
effects the engine applies for it, the outbox kinds it renders, the scheduled rules it runs,
what follows a change to an idea, and what it adds to the moderators' status view.
`bot.features.assemble()` joins an explicit tuple of them into one `Features`, which the
runtime hands to the engine, the dispatcher, the scheduler and the staff views. Nothing is
registered by importing a module, so a test builds exactly the features it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.config import Settings
from bot.i18n import Translator
from bot.ideas.book import IdeaBook, IdeaListeners
from dialogs.core import Conversation, Part, joined
from dialogs.types import Incoming, Reply
from storage.models import Idea, Person


@dataclass
class Applied:
    """What applying effects needs and produces inside the step's transaction."""

    session: Session
    person: Person
    incoming: Incoming
    settings: Settings
    replies: list[Reply] = field(default_factory=list)
    changed_ideas: list[Idea] = field(default_factory=list)


# A feature's handler of its own `Custom(kind, data)` effects.
CustomEffect = Callable[[Applied, dict[str, Any]], None]
# What an outbox row of one kind says, in the recipient's language at delivery time.
Renderer = Callable[[dict[str, Any], Translator], list[Reply]]
# A scan run by the scheduler: queue what has fallen due at `now`, return how many.
Rule = Callable[[Session, Settings, datetime], int]
# What a feature adds to an idea's status view for staff: (session, idea) → fields.
StatusExtra = Callable[[Session, Idea], dict[str, Any]]


@dataclass(frozen=True)
class Feature:
    """Everything one feature contributes; all parts optional."""

    name: str
    dialogs: Part = field(default_factory=Part)
    effects: Mapping[str, CustomEffect] = field(default_factory=dict)
    renderers: Mapping[str, Renderer] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    listeners: IdeaListeners = field(default_factory=IdeaListeners)
    status_extras: tuple[StatusExtra, ...] = ()


@dataclass(frozen=True)
class Features:
    """The features of one runtime, joined. A name claimed twice (a command, an effect kind,
    an outbox kind) is a wiring error raised when the runtime is built, not a silent
    override."""

    names: tuple[str, ...]
    conversation: Conversation
    effects: Mapping[str, CustomEffect]
    renderers: Mapping[str, Renderer]
    rules: tuple[Rule, ...]
    listeners: IdeaListeners
    status_extras: tuple[StatusExtra, ...]

    @classmethod
    def of(cls, *features: Feature) -> Features:
        listeners = IdeaListeners()
        for feature in features:
            listeners = listeners + feature.listeners
        return cls(
            names=tuple(f.name for f in features),
            conversation=Conversation.of(*(f.dialogs for f in features)),
            effects=joined("effect", (f.effects for f in features)),
            renderers=joined("outbox kind", (f.renderers for f in features)),
            rules=tuple(rule for f in features for rule in f.rules),
            listeners=listeners,
            status_extras=tuple(extra for f in features for extra in f.status_extras))

    @property
    def ideas(self) -> IdeaBook:
        """The idea book whose changes are followed by these features' listeners."""
        return IdeaBook(self.listeners)

    def render(self, kind: str, payload: dict[str, Any], t: Translator) -> list[Reply]:
        """An outbox row's replies in the recipient's language (`KeyError`: unknown kind)."""
        return self.renderers[kind](payload, t)
