"""Neutral message types: what every channel turns its updates into, and what it renders back.

Nothing here knows Telegram, Slack or the terminal exists. An adapter builds an `Incoming`,
hands it to the engine and renders the `Reply` objects it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Incoming:
    """One thing a person did: typed text, pressed a button (`choice`), or shared a location.

    `update_id` is the channel's own id for this update (Telegram update_id, Slack event id…);
    the engine handles each (channel, update_id) once. `language` is a hint from the platform
    (e.g. Telegram's `language_code`), used only until the person picks one with /sprak.
    """

    channel: str
    user_id: str
    text: str = ""
    choice: str | None = None
    location: Location | None = None
    update_id: str | None = None
    language: str | None = None
    display_name: str | None = None
    chat_id: str | None = None


@dataclass(frozen=True)
class Choice:
    """A button. `payload` goes back to the engine in `Incoming.choice` when pressed
    (at most 64 bytes, Telegram's callback_data limit)."""

    label: str
    payload: str


@dataclass(frozen=True)
class Document:
    """A file to send, e.g. the JSON export of `/data`."""

    filename: str
    content: bytes
    mime_type: str = "application/json"


@dataclass(frozen=True)
class Reply:
    """One message to the person. `text` is plain text (adapters escape it for their markup)."""

    text: str
    choices: tuple[Choice, ...] = field(default_factory=tuple)
    document: Document | None = None
    # A button that opens a URL rather than sending a payload (label, url).
    links: tuple[tuple[str, str], ...] = field(default_factory=tuple)
