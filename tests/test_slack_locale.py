"""Each person is answered in their own language, end to end: the real Bolt app behind
KomInn's route, signed requests, the fake Slack Web API whose users.info reports a locale per
user (tests/fakes/), the test's own database; the bench is tests/slack_fixtures.py.

Precedence: the person's `/kominn språk` choice, then (only with SLACK_USE_USER_LOCALE, on for
this module unless a test says otherwise) their Slack locale, then KOMINN_LOCALE. Shared
channels keep KOMINN_LOCALE."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from starlette.applications import Starlette

from adapters.slack import blocks as kit
from adapters.slack import campaign_blocks as ui
from adapters.slack import service as adapter
from adapters.slack.language import Choices, Locales, slack_language
from adapters.slack.sender import SlackSender
from bot.followups.dispatcher import dispatch
from bot.runtime import Runtime
from dialogs.types import Choice, Reply
from storage.models import Person
from tests import slack_fixtures as bench
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_signing import (
    app_home_opened_event,
    block_action_body,
    event_body,
    slash_command_body,
    view_submission_body,
)
from tests.slack_fixtures import (
    EMPLOYEE,
    MOD,
    QUESTION,
    buttons,
    campaign_values,
    command,
    make_campaign,
    make_idea,
    new_idea_values,
    post,
    press,
    shown,
    today,
)

fake, rt, service, http = bench.fake, bench.rt, bench.service, bench.http
kari, ola = bench.kari, bench.ola  # citizens of the Slack-configured runtime

ON: dict[str, Any] = {"slack_use_user_locale": True}
OFF: dict[str, Any] = {}  # the default: KOMINN_LOCALE unless the person chose

EN, GB, NB, NO, NN, DE = "UEN1", "UGB1", "UNB1", "UNO1", "UNN1", "UDE1"
LOCALES = {EN: "en-US", GB: "en-GB", NB: "nb-NO", NO: "no-NO", NN: "nn-NO", DE: "de-DE"}

# One line of `/kominn help` and of `/kominn status KI-n` in each language.
HELP = {"nb": "`triage` og `set` er for moderatorene.",
        "nn": "`triage` og `set` er for moderatorane.",
        "en": "`triage` and `set` are for moderators."}
STATUS = {"nb": ("*Status:* Nytt (siden", "*Støttespillere:* 0"),
          "nn": ("*Status:* Nytt (sidan", "*Støttespelarar:* 0"),
          "en": ("*Status:* New (since", "*Supporters:* 0")}


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def slack_settings() -> dict[str, Any]:
    """SLACK_USE_USER_LOCALE on: most tests here are about the Slack locale; OFF overrides."""
    return dict(ON)


@pytest.fixture(autouse=True)
def slack_locales(fake: FakeSlackAPI) -> None:
    """The users above, each with their Slack locale (users.info, include_locale)."""
    for user, locale in LOCALES.items():
        fake.set_locale(user, locale)


def speaks(message: dict[str, Any], language: str) -> bool:
    """The help or status answer is in *language* and in no other."""
    text = shown(message)
    lines = {lang: (HELP[lang],) if HELP[lang] in text else STATUS[lang] for lang in HELP}
    found = {lang for lang, wanted in lines.items() if all(w in text for w in wanted)}
    return found == {language}


# --- the person's language --------------------------------------------------------------------

@pytest.mark.parametrize(("user", "language"), [(EN, "en"), (GB, "en"), (NB, "nb"), (NO, "nb"),
                                                (NN, "nn")])
async def test_help_and_status_speak_the_persons_slack_language(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, user: str,
        language: str) -> None:
    make_idea(rt, "Flere benker ved Semsvannet")
    (help_answer,) = await command(http, fake, "help", user=user)
    assert speaks(help_answer, language)
    (status,) = await command(http, fake, "status KI-1", user=user)
    assert speaks(status, language)
    assert "KI-1 Flere benker ved Semsvannet" in status["blocks"][0]["text"]["text"]


async def test_english_and_bokmal_users_side_by_side(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet")
    (english,) = await command(http, fake, "status KI-1", user=EN, name="en")
    (bokmal,) = await command(http, fake, "status KI-1", user=NB, name="nb")
    (english_again,) = await command(http, fake, "help", user=EN, name="en")
    assert speaks(english, "en") and speaks(bokmal, "nb") and speaks(english_again, "en")
    (search,) = await command(http, fake, "search zeppelin", user=EN)
    assert "zeppelin" in shown(search) and "Ingen treff" not in shown(search)
    calls = fake.calls("users.info")
    assert sorted(c["args"]["user"] for c in calls) == [EN, NB]
    assert all(str(c["args"]["include_locale"]).lower() in ("1", "true") for c in calls)


@pytest.mark.parametrize("slack_settings", [ON, {**ON, "locale": "nn"}])
@pytest.mark.parametrize("cause", ["unknown locale", "no locale", "error", "timeout"])
async def test_an_unknown_or_unreadable_locale_falls_back_to_kominn_locale(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, service: adapter.SlackService,
        cause: str) -> None:
    user = DE if cause == "unknown locale" else EN
    if cause == "no locale":
        fake.set_locale(EN, None)
    elif cause == "error":
        fake.fail_next("users.info", error="missing_scope", status=200)
    elif cause == "timeout":
        service.bot.locales.timeout = 0.1
        fake.delay("users.info", 0.5)
    make_idea(rt, "Flere benker ved Semsvannet")
    (help_answer,) = await command(http, fake, "help", user=user)
    assert speaks(help_answer, rt.settings.locale)  # never English for lack of a better idea
    (status,) = await command(http, fake, "status KI-1", user=user)
    assert speaks(status, rt.settings.locale)
    assert fake.call_count("users.info") == 1  # a failure is not asked again at every click
    if cause == "timeout":
        await asyncio.sleep(0.5)  # let the fake finish its late answer before it stops


async def test_the_locale_is_asked_once_per_person_not_per_click(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    for n in range(12):
        make_idea(rt, f"Idé nummer {n + 1} om parken")
    (first,) = await command(http, fake, "list", user=EN)
    assert "Show more" in buttons(first)
    (second,) = await press(http, fake, buttons(first)["Show more"], user=EN)
    assert "*Ideas 11–12 of 12* (all ideas), newest first" in shown(second)
    assert set(buttons(second)) == {"Show"}
    (status,) = await command(http, fake, "status KI-1", user=EN)
    assert speaks(status, "en")
    assert fake.call_count("users.info") == 1


async def test_the_ack_comes_before_the_locale_lookup(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    fake.delay("users.info", 1.0)  # slow, but within the adapter's 1.5 s timeout
    started = time.monotonic()
    response = await post(http, slash_command_body(text="help", user_id=EN,
                                                   response_url=fake.response_url("slow")))
    assert response.status_code == 200 and response.text == ""
    assert time.monotonic() - started < 0.8 and fake.responses("slow") == []
    (answer,) = await fake.await_responses("slow")
    assert speaks(answer, "en")


# --- buttons, modals, refusals, App Home ------------------------------------------------------

async def test_a_moderators_buttons_modal_and_its_errors_speak_their_language(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    fake.set_locale(MOD, "en-GB")
    make_idea(rt, "Flere benker ved Semsvannet")
    (view,) = await command(http, fake, "status KI-1", user=MOD, name="view")
    assert set(buttons(view)) == {"→ Useful", "→ Declined"}
    decline = buttons(view)["→ Declined"]
    await post(http, block_action_body(decline["action_id"], decline["value"], user_id=MOD,
                                       trigger_id="TRIG7", response_url=fake.response_url("view")))
    (call,) = await fake.await_calls("views.open")
    modal = call["args"]["view"]
    assert modal["title"]["text"] == "Change status" and "New → *Declined*" in shown(modal)
    assert json.loads(modal["private_metadata"])["lang"] == "en"

    empty = await post(http, view_submission_body(kit.MOVE_VIEW, {"note": {"value": " "}},
                                                  user_id=MOD,
                                                  private_metadata=modal["private_metadata"]))
    assert empty.json()["errors"]["note"] == "Declining needs a reason – the citizen will see it."
    # After a restart (nothing cached) the ack still speaks the modal's language, at no call.
    restarted = adapter.service(rt).routes
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=restarted)),
                                 base_url="http://testserver") as fresh:
        again = await post(fresh, view_submission_body(
            kit.MOVE_VIEW, {"note": {"value": ""}}, user_id=MOD,
            private_metadata=modal["private_metadata"]))
    assert again.json()["errors"]["note"] == "Declining needs a reason – the citizen will see it."
    assert fake.call_count("users.info") == 1
    await post(http, view_submission_body(
        kit.MOVE_VIEW, {"note": {"value": "Outside the municipality's remit."}}, user_id=MOD,
        private_metadata=modal["private_metadata"]))
    updated = (await fake.await_responses("view", n=2))[1]
    assert "KI-1: New → *Declined*" in shown(updated) and set(buttons(updated)) == {"→ New"}


async def test_a_refusal_and_the_campaign_confirmation_speak_the_persons_language(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    (refused,) = await command(http, fake, "triage", user=EN)
    assert "Sorry, only moderators can do this." in shown(refused)
    (refused_nn,) = await command(http, fake, "triage", user=NN)
    assert "Orsak, dette kan berre moderatorane gjere." in shown(refused_nn)

    fake.set_locale(MOD, "en-US")
    make_campaign(rt)
    (listed,) = await command(http, fake, "konkurranse", user=MOD)
    assert listed["blocks"][0]["text"]["text"] == "Idea competitions"
    close = buttons(listed)["Close"]
    assert {k: v["text"] for k, v in close["confirm"].items()} == {
        "title": "Close the competition?", "text": "“Sykkelbyen Asker” takes no more ideas "
        "after this.", "confirm": "Close", "deny": "Cancel"}

    await command(http, fake, "konkurranse ny", user=MOD, n=0)
    (opened,) = await fake.await_calls("views.open")
    assert opened["args"]["view"]["close"]["text"] == "Cancel"
    values = campaign_values("Cycling town", QUESTION, opens=today(rt),
                             closes=today(rt) - timedelta(days=1))
    problem = await post(http, view_submission_body(
        ui.CAMPAIGN_VIEW, values, user_id=MOD,
        private_metadata=opened["args"]["view"]["private_metadata"]))
    assert problem.json()["errors"] == {"closes": "The last day cannot be in the past."}


async def test_app_home_and_the_new_idea_modal_speak_the_persons_language(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    await post(http, event_body(app_home_opened_event(EN), event_id="EvEN"))
    await post(http, event_body(app_home_opened_event(NB), event_id="EvNB"))
    await fake.await_calls("views.publish", n=2)
    english, bokmal = fake.home_view(EN), fake.home_view(NB)
    assert english is not None and bokmal is not None
    assert "New idea" in buttons(english) and "Ny idé" in buttons(bokmal)
    new = buttons(english)["New idea"]
    await post(http, block_action_body(new["action_id"], new["value"], user_id=EN,
                                       trigger_id="THOME", view=english))
    (opened,) = await fake.await_calls("views.open")
    assert opened["args"]["view"]["title"]["text"] == "New idea"
    assert fake.call_count("users.info") == 2


async def test_a_follow_up_button_tells_the_dialog_engine_the_slack_language(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    """The engine answers in the person's language and remembers it for later notices."""
    await SlackSender(fake.async_client()).send(
        EN, [Reply("Hva vil du se?", (Choice("Mine idéer", "g:mine"),))])
    (dm,) = fake.messages(f"D{EN}")
    (answer,) = await press(http, fake, buttons(dm)["Mine idéer"], user=EN)
    assert "You have no ideas yet." in shown(answer)
    with Session(rt.db) as session:
        person = session.exec(select(Person).where(Person.channel_user_id == EN)).one()
        assert (person.channel, person.language) == ("slack", "en")
    assert fake.call_count("users.info") == 1


# --- SLACK_USE_USER_LOCALE off (the default) and the person's own choice ----------------------

LANGUAGE_LINE = {"nb": "• `språk [nb|nn|en]` – språket KomInn svarer deg på",
                 "nn": "• `språk [nb|nn|en]` – språket KomInn svarar deg på",
                 "en": "• `språk [nb|nn|en]` – the language KomInn answers you in"}
CHOSEN = {"nb": "Greit – fra nå av svarer KomInn deg på bokmål.",
          "nn": "Greitt – frå no av svarar KomInn deg på nynorsk.",
          "en": "Done – from now on KomInn answers you in English."}
USAGE_NB = ("Slik bytter du: `/kominn språk nb` (bokmål), `/kominn språk nn` (nynorsk) eller "
            "`/kominn språk en` (engelsk).")


def said(message: dict[str, Any]) -> str:
    """The text of a one-section answer (`shown` would repeat it: blocks and fallback)."""
    (block,) = message["blocks"]
    assert block["text"]["text"] == message["text"]
    return str(message["text"])


def stored_language(rt: Runtime, user: str) -> str | None:
    with Session(rt.db) as session:
        person = session.exec(select(Person).where(Person.channel == "slack",
                                                   Person.channel_user_id == user)).first()
        return person.language if person else None


@pytest.mark.parametrize("slack_settings", [OFF])
async def test_by_default_an_english_slack_user_gets_kominn_locale_without_users_info(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    assert rt.settings.slack_use_user_locale is False
    make_idea(rt, "Flere benker ved Semsvannet")
    (help_answer,) = await command(http, fake, "help", user=EN)
    assert speaks(help_answer, "nb")
    (status,) = await command(http, fake, "status KI-1", user=GB)
    assert speaks(status, "nb")
    await post(http, event_body(app_home_opened_event(EN), event_id="EvOff"))
    await fake.await_calls("views.publish")
    home = fake.home_view(EN)
    assert home is not None and "Ny idé" in buttons(home)
    await command(http, fake, "ny", user=EN, n=0, trigger="TOFF")
    (opened,) = await fake.await_calls("views.open")
    assert opened["args"]["view"]["submit"]["text"] == "Send inn"
    assert fake.call_count("users.info") == 0


@pytest.mark.parametrize("slack_settings", [OFF])
async def test_a_chosen_language_answers_that_person_and_nobody_else(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    make_idea(rt, "Flere benker ved Semsvannet")
    (chosen,) = await command(http, fake, "språk en", user=EN)
    assert said(chosen) == CHOSEN["en"]
    assert stored_language(rt, EN) == "en"
    (help_answer,) = await command(http, fake, "help", user=EN)
    assert speaks(help_answer, "en")
    (status,) = await command(http, fake, "status KI-1", user=EN)
    assert speaks(status, "en")
    for other in (GB, NB, EMPLOYEE):  # an English Slack or none: still KOMINN_LOCALE
        (theirs,) = await command(http, fake, "status KI-1", user=other)
        assert speaks(theirs, "nb"), other
        assert stored_language(rt, other) is None
    assert fake.call_count("users.info") == 0


@pytest.mark.parametrize("slack_settings", [OFF])
async def test_the_choice_is_stored_and_survives_a_new_adapter(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    (chosen,) = await command(http, fake, "språk nn", user=EMPLOYEE)
    assert said(chosen) == CHOSEN["nn"]
    with Session(rt.db) as session:
        person = session.exec(select(Person).where(Person.channel_user_id == EMPLOYEE)).one()
        assert (person.channel, person.language, person.chat_id) == ("slack", "nn", EMPLOYEE)
    restarted = adapter.service(rt)
    assert restarted.bot.choices.cached(EMPLOYEE) is None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(
            app=Starlette(routes=restarted.routes)), base_url="http://testserver") as fresh:
        (help_answer,) = await command(fresh, fake, "help", user=EMPLOYEE, name="fresh")
        await bench.drain()
    assert speaks(help_answer, "nn")
    assert restarted.bot.choices.cached(EMPLOYEE) == "nn"


@pytest.mark.parametrize("word", ["språk", "sprak", "language", "lang", "Språk"])
async def test_a_chosen_language_beats_the_slack_locale(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, word: str) -> None:
    assert rt.settings.slack_use_user_locale is True
    make_idea(rt, "Flere benker ved Semsvannet")
    (before,) = await command(http, fake, "help", user=NN)
    assert speaks(before, "nn")
    (chosen,) = await command(http, fake, f"{word} en", user=NN)
    assert said(chosen) == CHOSEN["en"]
    (help_answer,) = await command(http, fake, "help", user=NN)
    (status,) = await command(http, fake, "status KI-1", user=NN)
    assert speaks(help_answer, "en") and speaks(status, "en")
    (back,) = await command(http, fake, f"{word} NB", user=NN)
    assert said(back) == CHOSEN["nb"]
    (status,) = await command(http, fake, "status KI-1", user=NN)
    assert speaks(status, "nb") and stored_language(rt, NN) == "nb"
    assert fake.call_count("users.info") == 1


@pytest.mark.parametrize(("slack_settings", "user", "choice", "expected"), [
    (OFF, EN, None, "KomInn svarer deg på bokmål, kommunens språk."),
    ({**OFF, "locale": "nn"}, NB, None, "KomInn svarar deg på nynorsk, språket til kommunen."),
    (ON, EN, None, "KomInn answers you in English, the language of your Slack."),
    (ON, DE, None, "KomInn svarer deg på bokmål, kommunens språk."),
    (ON, EN, "nn", "KomInn svarar deg på nynorsk, som du har valt."),
    (OFF, NB, "en", "KomInn answers you in English, as you chose.")])
async def test_without_a_value_it_says_the_current_language_and_how_to_change_it(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, user: str,
        choice: str | None, expected: str) -> None:
    if choice:
        await command(http, fake, f"språk {choice}", user=user)
    (answer,) = await command(http, fake, "språk", user=user)
    first, usage = said(answer).split("\n")
    assert first == expected
    assert "`/kominn språk nb`" in usage and "`/kominn språk en`" in usage
    assert (usage == USAGE_NB) == expected.startswith("KomInn svarer")
    assert stored_language(rt, user) == choice


@pytest.mark.parametrize(("text", "shown_value"), [
    ("språk tysk", "tysk"), ("språk de", "de"), ("språk nb nn", "nb nn"),
    ("språk <!channel>", "&lt;!channel&gt;")])
async def test_an_unknown_language_is_refused_politely_with_the_options(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, text: str,
        shown_value: str) -> None:
    (refused,) = await command(http, fake, text, user=EMPLOYEE)
    assert said(refused) == (f"Beklager, KomInn kan ikke «{shown_value}». Velg `nb` (bokmål), "
                              "`nn` (nynorsk) eller `en` (engelsk), f.eks. `/kominn språk en`.")
    assert stored_language(rt, EMPLOYEE) is None
    (refused_en,) = await command(http, fake, text, user=EN)
    assert said(refused_en).startswith(f"Sorry, KomInn does not speak “{shown_value}”. Choose "
                                        "`nb` (Bokmål), `nn` (Nynorsk) or `en` (English)")


@pytest.mark.parametrize("language", ["nb", "nn", "en"])
async def test_help_lists_the_language_command(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime, language: str) -> None:
    await command(http, fake, f"språk {language}", user=MOD)
    for text in ("help", "zeppelin"):  # `help`, and the help an unknown command gets
        (answer,) = await command(http, fake, text, user=MOD)
        assert LANGUAGE_LINE[language] in shown(answer)
        assert all(LANGUAGE_LINE[other] not in shown(answer) for other in LANGUAGE_LINE
                   if other != language)


@pytest.mark.parametrize("slack_settings", [OFF])
async def test_a_modal_ack_speaks_the_cached_choice_and_the_modal_keeps_it(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime,
        service: adapter.SlackService) -> None:
    await command(http, fake, "språk en", user=NB)
    assert service.bot.modal_translator({}, NB).language == "en"
    assert service.bot.modal_translator({}, EN).language == "nb"
    await command(http, fake, "ny", user=NB, n=0, trigger="TNEW")
    (opened,) = await fake.await_calls("views.open")
    modal = opened["args"]["view"]
    assert modal["title"]["text"] == "New idea"
    short = await post(http, view_submission_body(kit.NEW_IDEA_VIEW, new_idea_values(
        "Kort", "Også kort"), user_id=NB, private_metadata=modal["private_metadata"]))
    assert "at least 5 characters" in short.json()["errors"]["title"]
    assert fake.call_count("users.info") == 0


@pytest.mark.parametrize("slack_settings", [OFF])
async def test_a_follow_up_button_gives_the_engine_the_choice_or_no_language_hint(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime) -> None:
    """Without a choice (setting off) the engine answers in KOMINN_LOCALE and stores nothing,
    so a later `/kominn språk` or SLACK_USE_USER_LOCALE still decides; with one, it speaks it."""
    sender = SlackSender(fake.async_client())
    for user in (EN, NB):
        await sender.send(user, [Reply("Hva vil du se?", (Choice("Mine idéer", "g:mine"),))])
    await command(http, fake, "språk en", user=NB)
    (dm,) = fake.messages(f"D{EN}")
    (answer,) = await press(http, fake, buttons(dm)["Mine idéer"], user=EN)
    assert "You have no ideas yet." not in shown(answer)
    assert stored_language(rt, EN) is None
    (dm,) = fake.messages(f"D{NB}")
    (answer,) = await press(http, fake, buttons(dm)["Mine idéer"], user=NB, name="nb")
    assert "You have no ideas yet." in shown(answer)
    assert fake.call_count("users.info") == 0


# --- shared channels stay in KOMINN_LOCALE ----------------------------------------------------

async def test_a_new_idea_from_an_english_user_is_posted_to_the_channel_in_kominn_locale(
        http: httpx.AsyncClient, fake: FakeSlackAPI, rt: Runtime,
        service: adapter.SlackService) -> None:
    await post(http, slash_command_body(text="ny", user_id=EN, trigger_id="TRIG9",
                                        response_url=fake.response_url("cmd")))
    (call,) = await fake.await_calls("views.open")
    modal = call["args"]["view"]
    assert modal["title"]["text"] == "New idea" and modal["submit"]["text"] != "Send inn"

    short = await post(http, view_submission_body(kit.NEW_IDEA_VIEW, new_idea_values(
        "Kort", "Også kort"), user_id=EN, private_metadata=modal["private_metadata"]))
    assert "at least 5 characters" in short.json()["errors"]["title"]

    await post(http, view_submission_body(kit.NEW_IDEA_VIEW, new_idea_values(
        "Benker rundt Semsvannet", "Vi trenger flere benker rundt Semsvannet for de eldre."),
        user_id=EN, private_metadata=modal["private_metadata"]))
    (receipt,) = await fake.await_responses("cmd")
    assert "Thank you! Your idea is registered as *KI-1*" in shown(receipt)

    await dispatch(rt.db, rt.settings, rt.features.renderers, {"slack": service.sender})
    (posted,) = fake.messages("CIDEAS")
    assert posted["text"].startswith("Ny idé KI-1: Benker rundt Semsvannet")
    assert set(buttons(posted)) == {"Vis"}


# --- the cache itself -------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_cache_expires_is_bounded_and_retries_failures_later(
        fake: FakeSlackAPI) -> None:
    clock = Clock()
    locales = Locales(fake.async_client(), ttl=3600, failed_ttl=300, size=2,
                              clock=clock)
    assert await locales.language(EN) == "en" and await locales.language(EN) == "en"
    assert fake.call_count("users.info") == 1 and locales.cached(EN) == "en"

    fake.set_locale(EN, "nn-NO")
    clock.now += 3601  # an hour later the person's current language is asked again
    assert locales.cached(EN) is None
    assert await locales.language(EN) == "nn" and fake.call_count("users.info") == 2

    assert await locales.language(NB) == "nb"
    assert await locales.language(DE) is None  # a third person: the oldest entry goes
    assert locales.cached(EN) is None and locales.cached(NB) == "nb"
    assert await locales.language(EN) == "nn" and fake.call_count("users.info") == 5

    fake.fail_next("users.info", error="ratelimited", status=429)
    assert await locales.language(NO) is None
    assert await locales.language(NO) is None and fake.call_count("users.info") == 6
    clock.now += 301
    assert await locales.language(NO) == "nb" and fake.call_count("users.info") == 7
    assert await locales.language("") is None and fake.call_count("users.info") == 7


async def test_a_slow_users_info_gives_up_at_the_timeout(fake: FakeSlackAPI) -> None:
    fake.delay("users.info", 0.6)
    locales = Locales(fake.async_client(), timeout=0.1)
    started = time.monotonic()
    assert await locales.language(EN) is None
    assert time.monotonic() - started < 0.5
    await asyncio.sleep(0.6)  # let the fake finish its late answer before it stops


async def test_choices_are_cached_briefly_bounded_and_updated_at_once() -> None:
    """Another worker's `/kominn språk` is seen here once the cached answer expires."""
    clock, stored, loads = Clock(), {EN: "en"}, []

    async def load(user_id: str) -> str | None:
        loads.append(user_id)
        if user_id == "UBROKEN":
            raise RuntimeError("database unavailable")
        return stored.get(user_id)

    choices = Choices(load, ttl=60, size=2, clock=clock)
    assert await choices.language(EN) == "en" and await choices.language(NB) is None
    assert await choices.language(EN) == "en" and loads == [EN, NB]
    stored[NB] = "nn"  # chosen on another worker
    assert await choices.language(NB) is None and choices.cached(EN) == "en"
    clock.now += 61
    assert choices.cached(EN) is None
    assert await choices.language(NB) == "nn" and loads == [EN, NB, NB]

    choices.remember(EN, "nb")  # chosen on this worker: known at once, no query
    assert await choices.language(EN) == "nb" and len(loads) == 3
    assert await choices.language(DE) is None  # a third person: the oldest entry (NB) goes
    assert choices.cached(NB) is None and choices.cached(EN) == "nb"
    stored[GB] = "de"  # not a language KomInn speaks
    assert await choices.language(GB) is None
    assert await choices.language("UBROKEN") is None and await choices.language("UBROKEN") is None
    assert loads.count("UBROKEN") == 2  # a failure is not cached
    assert await choices.language("") is None and "" not in loads


@pytest.mark.parametrize(("locale", "language"), [
    ("nb-NO", "nb"), ("no-NO", "nb"), ("nb", "nb"), ("nn-NO", "nn"), ("nn_NO", "nn"),
    ("en-US", "en"), ("en-GB", "en"), ("EN-us", "en"), ("de-DE", None), ("sv-SE", None),
    ("", None), (None, None)])
def test_slack_locales_map_to_our_languages(locale: str | None, language: str | None) -> None:
    assert slack_language(locale) == language


def test_the_manifest_asks_for_users_read() -> None:
    manifest = (Path(__file__).resolve().parents[1] / "slack" / "manifest.yml").read_text()
    assert "\n      - users:read " in manifest


async def test_the_fake_reports_the_locale_only_when_asked(fake: FakeSlackAPI) -> None:
    client = fake.async_client()
    assert (await client.users_info(user=EN, include_locale=True))["user"]["locale"] == "en-US"
    assert "locale" not in (await client.users_info(user=EN))["user"]
    assert "locale" not in (await client.users_info(user=EMPLOYEE,
                                                    include_locale=True))["user"]
