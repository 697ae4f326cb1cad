"""A person chatting with the engine, as the adapters would: text, button presses by label."""

from __future__ import annotations

import itertools

from bot.conversation.engine import Engine
from dialogs.types import Incoming, Location, Reply

_update_ids = itertools.count(1)

IDEA = {
    "title": "Flere benker ved Semsvannet",
    "description": "Det trengs flere benker langs turstien rundt Semsvannet, så eldre kan hvile.",
    "area": "Folkehelse",
    "place": "Semsvannet",
}


class ChatPerson:
    def __init__(self, engine: Engine, user: str, channel: str = "terminal",
                 language: str | None = None, display_name: str | None = None,
                 chat_id: str | None = None) -> None:
        self.engine = engine
        self.display_name = display_name
        self.chat_id = chat_id
        self.user = user
        self.channel = channel
        self.language = language
        self.replies: list[Reply] = []

    def _send(self, **kwargs: object) -> list[Reply]:
        incoming = Incoming(channel=self.channel, user_id=self.user, language=self.language,
                            display_name=self.display_name, chat_id=self.chat_id,
                            update_id=str(next(_update_ids)), **kwargs)  # type: ignore[arg-type]
        self.replies = self.engine.handle(incoming)
        return self.replies

    def say(self, text: str) -> list[Reply]:
        return self._send(text=text)

    def locate(self, latitude: float, longitude: float) -> list[Reply]:
        return self._send(location=Location(latitude, longitude))

    def press(self, label: str) -> list[Reply]:
        """Press the button whose label contains `label` in the latest replies."""
        for reply in reversed(self.replies):
            for choice in reply.choices:
                if label.casefold() in choice.label.casefold():
                    return self._send(choice=choice.payload)
        raise AssertionError(f"no button {label!r} in {self.buttons()}")

    def payload(self, label: str) -> str:
        for reply in reversed(self.replies):
            for choice in reply.choices:
                if label.casefold() in choice.label.casefold():
                    return choice.payload
        raise AssertionError(f"no button {label!r}")

    def press_payload(self, payload: str) -> list[Reply]:
        return self._send(choice=payload)

    def buttons(self) -> list[str]:
        return [c.label for r in self.replies for c in r.choices]

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    def submit(self, title: str = IDEA["title"], description: str = IDEA["description"],
               area: str = IDEA["area"], place: str | None = IDEA["place"],
               consent: bool = True, mine_is_new: bool = True, start: str = "/ny") -> str:
        """A whole submission; returns the new ref from the receipt."""
        self.say(start)
        self.say(title)
        self.say(description)
        self.press(area)
        if place is None:
            self.press("Hopp over")
        else:
            self.say(place)
        self.press("Ja" if consent else "Nei")
        if any("KI-" in c.label for r in self.replies for c in r.choices) and mine_is_new:
            self.press("Min idé er ny")
        self.press("Send inn")
        for word in self.text.split():
            if word.startswith("KI-"):
                return word.rstrip(".,")
        raise AssertionError(f"no receipt in {self.text!r}")
