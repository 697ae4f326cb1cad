"""The terminal chat (`kominn chat`): the embedded default, no tokens needed.

Buttons are printed as numbered lines; the person types the number or the label. Works the
same interactively and with piped input, and ends cleanly at end of input.
"""

from __future__ import annotations

import sys
from typing import TextIO

from bot.conversation.engine import Engine
from dialogs.types import Choice, Incoming, Reply

CHANNEL = "terminal"


class ConsoleChat:
    def __init__(self, engine: Engine, user: str, *, out: TextIO = sys.stdout) -> None:
        self.engine = engine
        self.user = user
        self.out = out
        self.choices: tuple[Choice, ...] = ()

    def send(self, text: str) -> None:
        """One line typed by the person."""
        choice = self._pressed(text)
        incoming = Incoming(channel=CHANNEL, user_id=self.user, display_name=self.user,
                            text="" if choice else text, choice=choice.payload if choice else None)
        self.render(self.engine.handle(incoming))

    def show_notices(self) -> None:
        """Follow-ups queued for this person while they were away (the terminal has no push:
        they are shown when the chat opens, then marked sent)."""
        from bot.followups.dispatcher import take_pending

        self.render(take_pending(self.engine.db, self.engine.settings,
                                 self.engine.features.renderers, CHANNEL, self.user))

    def _pressed(self, text: str) -> Choice | None:
        typed = text.strip()
        if typed.isdigit() and 1 <= int(typed) <= len(self.choices):
            return self.choices[int(typed) - 1]
        return next((c for c in self.choices if c.label.casefold() == typed.casefold()), None)

    def render(self, replies: list[Reply]) -> None:
        for reply in replies:
            self.out.write(f"\nKomInn: {reply.text}\n")
            for number, choice in enumerate(reply.choices, start=1):
                self.out.write(f"  {number}) {choice.label}\n")
            for label, url in reply.links:
                self.out.write(f"  {label}: {url}\n")
            if reply.document is not None:
                self.out.write(f"[{reply.document.filename}]\n")
                self.out.write(reply.document.content.decode("utf-8", "replace") + "\n")
            if reply.choices:
                self.choices = reply.choices
        self.out.flush()


def run(engine: Engine, user: str, *, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    chat = ConsoleChat(engine, user, out=out)
    interactive = stdin.isatty()
    if interactive:
        out.write("KomInn – terminal chat. /hjelp viser hva du kan gjøre; Ctrl-D avslutter.\n")
        chat.send("/start")
    chat.show_notices()
    while True:
        if interactive:
            out.write("\n> ")
            out.flush()
        line = stdin.readline()
        if not line:
            break
        chat.send(line.rstrip("\n"))
    if interactive:
        out.write("\nHa det!\n")
