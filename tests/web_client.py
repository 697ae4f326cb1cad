"""A citizen in the web chat through Starlette's TestClient (HTTP, cookies, forms), pressing
buttons by label like tests.helpers.ChatPerson does with the engine."""

from __future__ import annotations

import html
import re

from starlette.testclient import TestClient

from bot.app import build, starlette_app
from bot.runtime import Runtime

_BUTTON = re.compile(r'<button type="submit" name="choice" value="([^"]*)">([^<]*)</button>')
_HIDDEN = re.compile(r'<input type="hidden" name="(csrf|turn)" value="([^"]*)">')


def web_client(runtime: Runtime, **kwargs: object) -> TestClient:
    """The whole `kominn run` app (no lifespan: nothing is started)."""
    return TestClient(starlette_app(build(runtime)), **kwargs)  # type: ignore[arg-type]


class WebPerson:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.page = ""
        self.open()

    def open(self, path: str = "/chat") -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        self.page = response.text
        return self.page

    def form(self) -> dict[str, str]:
        return dict(_HIDDEN.findall(self.page)[:2])

    def buttons(self) -> dict[str, str]:
        return {html.unescape(label): html.unescape(value) for value, label in
                _BUTTON.findall(self.page)}

    def say(self, text: str) -> str:
        return self._post({**self.form(), "text": text})

    def press(self, label: str) -> str:
        buttons = self.buttons()
        assert label in buttons, f"no button {label!r} in {list(buttons)}"
        return self._post({**self.form(), "choice": buttons[label]})

    def _post(self, data: dict[str, str]) -> str:
        response = self.client.post("/chat", data=data, follow_redirects=False)
        assert response.status_code == 303, response.text
        return self.open()

    def submit(self, title: str, description: str, area: str = "Folkehelse") -> str:
        self.say("/ny")
        self.say(title)
        self.say(description)
        self.press(area)
        self.press("Hopp over")
        self.press("Nei")
        if "Min idé er ny" in self.buttons():
            self.press("Min idé er ny")
        page = self.press("Send inn")
        found = re.findall(r"KI-\d+", page)
        assert found, page
        return found[-1]
