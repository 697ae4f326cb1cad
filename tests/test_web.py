"""The web channel over HTTP: the chat (no JavaScript: POST → redirect → GET; with it: JSON),
sessions, CSRF, escaping, headers, the public board, idea pages and the report."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from adapters.web.render import Renderer, Turn
from adapters.web.security import RateLimit
from adapters.web.session import accept_language, signing_secret
from bot.config import Settings
from bot.i18n import translator
from bot.ideas.book import get_idea
from bot.ideas.listing import public_ideas
from bot.runtime import Runtime, open_runtime
from dialogs.lifecycle import Status
from dialogs.types import Choice, Reply
from storage.models import Idea, Person, RateHit, Support
from tests.helpers import IDEA, ChatPerson
from tests.test_web_chat import merge_a_second_idea_into_the_first
from tests.web_client import WebPerson, web_client

PAYLOADS = ('<script>alert("x")</script>', '<img src=x onerror=alert(1)>',
            '" onmouseover="alert(2)')


def test_whole_submission_without_javascript(runtime: Runtime) -> None:
    person = WebPerson(web_client(runtime))
    page = person.page
    assert '<html lang="nb">' in page
    assert 'role="log"' in page and 'aria-live="polite"' in page
    assert '<label for="message">' in page and 'id="message"' in page
    ref = person.submit(IDEA["title"], IDEA["description"])
    assert ref == "KI-1"
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None and idea.channel == "web"
        author = db.get(Person, idea.author_id)
        assert author is not None and author.channel == "web"
    assert IDEA["title"] in person.page  # what the person said is in the log


def test_double_submit_is_one_turn(runtime: Runtime) -> None:
    client = web_client(runtime)
    person = WebPerson(client)
    person.say("/ny")
    form = {**person.form(), "text": "Lys i lysløypa hele natten"}
    for _ in range(2):
        assert client.post("/chat", data=form, follow_redirects=False).status_code == 303
    page = person.open()
    assert "beskriv" in page.casefold()  # asked for the description once, not re-asked
    with Session(runtime.db) as db:
        rows = db.exec(select(Person).where(Person.channel == "web")).all()
        assert len(rows) == 1


def test_json_turn_for_the_script(runtime: Runtime) -> None:
    client = web_client(runtime)
    person = WebPerson(client)
    response = client.post("/chat", data={**person.form(), "text": "/ny"},
                           headers={"Accept": "application/json"})
    assert response.status_code == 200
    data = response.json()
    assert "KomInn:" in data["log"] and 'id="message"' in data["controls"]


def test_every_post_needs_the_csrf_token(runtime: Runtime) -> None:
    client = web_client(runtime)
    person = WebPerson(client)
    assert client.post("/chat", data={"text": "/ny", "turn": "abcdefgh12"}).status_code == 403
    assert client.post("/chat", data={"text": "/ny", "csrf": "wrong"}).status_code == 403
    stranger = web_client(runtime)  # a token from another session is not theirs
    assert stranger.post("/chat", data={**person.form(), "text": "/ny"}).status_code == 403
    assert client.post("/chat", data={**person.form(), "text": "x" * 20_000}).status_code == 413


def test_citizen_text_is_escaped_everywhere(runtime: Runtime) -> None:
    client = web_client(runtime)
    person = WebPerson(client)
    title = "Benk " + PAYLOADS[0][:40]
    description = " ".join(PAYLOADS) + " langs hele turstien rundt vannet"
    person.submit(title, description)
    pages = [person.page, client.get("/ideer").text, client.get("/ideer/KI-1").text,
             client.get("/ideer?q=benk").text]
    for page in pages:
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert '" onmouseover="' not in page
    assert "&lt;script&gt;" in pages[2] and "&lt;img src=x onerror=alert(1)&gt;" in pages[2]


def test_security_headers_and_cookie(runtime: Runtime) -> None:
    client = web_client(runtime)
    response = client.get("/chat")
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "script-src 'self'" in csp
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert response.headers["cache-control"] == "no-store"
    # https is believed only from a trusted proxy
    forwarded = {"X-Forwarded-Proto": "https"}
    assert "Secure" not in web_client(runtime).get("/chat", headers=forwarded) \
        .headers["set-cookie"]


def test_secure_cookie_behind_a_trusted_proxy(runtime: Runtime) -> None:
    runtime.settings.trusted_proxies = ["127.0.0.0/8"]
    client = web_client(runtime, client=("127.0.0.1", 5000))
    response = client.get("/chat", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["set-cookie"]


def test_rate_limit_per_client_address(runtime: Runtime) -> None:
    runtime.settings.web_max_messages_per_address = 3
    runtime.settings.trusted_proxies = ["127.0.0.1"]
    client = web_client(runtime, client=("127.0.0.1", 5000))
    person = WebPerson(client)
    codes = []
    for n in range(4):
        codes.append(client.post("/chat", data={**person.form(), "text": f"hei {n}"},
                                 headers={"X-Forwarded-For": "203.0.113.7"},
                                 follow_redirects=False).status_code)
    assert codes == [303, 303, 303, 429]
    # someone else behind the same proxy has their own allowance
    other = client.post("/chat", data={**person.form(), "text": "hei"},
                        headers={"X-Forwarded-For": "203.0.113.8"}, follow_redirects=False)
    assert other.status_code == 303


def test_rate_limit_is_shared_by_workers_on_one_database(settings: Settings) -> None:
    """Two runtimes on one database (two `kominn run` workers behind a proxy): one address
    gets one allowance in all, not one per worker."""
    settings.web_max_messages_per_address = 3
    settings.trusted_proxies = ["127.0.0.1"]
    first, second = open_runtime(settings), open_runtime(settings)
    try:
        people = [WebPerson(web_client(rt, client=("127.0.0.1", 5000)))
                  for rt in (first, second)]
        codes = [people[n % 2].client.post(
            "/chat", data={**people[n % 2].form(), "text": f"hei {n}"},
            headers={"X-Forwarded-For": "203.0.113.7"}, follow_redirects=False).status_code
            for n in range(4)]
        assert codes == [303, 303, 303, 429]
    finally:
        first.db.dispose()
        second.db.dispose()


def test_rate_limit_window_slides_and_old_minutes_go(runtime: Runtime) -> None:
    now = [1_000_040.0]  # 20 s into a minute
    limit = RateLimit(runtime.db, 3, salt=b"secret", clock=lambda: now[0])
    assert [limit.allow("203.0.113.7") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("203.0.113.8")
    now[0] += 60  # the next minute, a third in: the last minute's 4 still weigh 2/3
    assert not limit.allow("203.0.113.7")
    now[0] += 120  # two minutes later: nothing left to count
    assert limit.allow("203.0.113.7")
    with Session(runtime.db) as db:
        rows = db.exec(select(RateHit)).all()
    assert {row.bucket for row in rows} >= {int(now[0] // 60)}
    assert min(row.bucket for row in rows) >= int(now[0] // 60) - 1  # older minutes deleted
    assert all("203.0.113" not in row.key for row in rows)  # a hash, not the address


def test_session_secret_survives_a_restart(runtime: Runtime) -> None:
    first = signing_secret(runtime.db, None)
    assert signing_secret(runtime.db, None) == first and len(first) > 40
    assert signing_secret(runtime.db, "configured-secret-123") == "configured-secret-123"


def test_board_lists_newest_first_with_filters_and_plurals(runtime: Runtime) -> None:
    kari, ola = ChatPerson(runtime.engine, "kari"), ChatPerson(runtime.engine, "ola")
    kari.submit()
    kari.submit(title="Gatelys langs skoleveien", area="Areal og transport",
                description="Skoleveien er mørk om vinteren; barna trenger gatelys hele veien.")
    ola.press_payload("g:support:1")
    client = web_client(runtime)
    page = client.get("/ideer").text
    assert page.index("KI-2") < page.index("KI-1")
    assert "1 støttespiller" in page and "0 støttespillere" in page and "2 idéer" in page
    assert "Nytt" in page
    only = client.get("/ideer?omrade=Areal og transport").text
    assert "KI-2" in only and "KI-1:" not in only
    found = client.get("/ideer?q=benker semsvannet").text
    assert "KI-1" in found and "KI-2:" not in found
    with Session(runtime.db) as db:
        idea = db.get(Idea, 2)
        assert idea is not None
        runtime.ideas.set_status(db, idea, Status.USEFUL, by="test", note="Vi ser på det")
        db.commit()
    useful = client.get("/ideer?status=useful").text
    assert "KI-2" in useful and "KI-1:" not in useful
    assert "kari" not in page + useful  # no names, ever
    response = client.get("/ideer")
    assert response.headers["cache-control"] == "public, max-age=60"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("query", ["KI-2", "ki 2", "ki2", " Ki-2 "])
def test_board_search_for_a_reference_opens_that_idea(runtime: Runtime, query: str) -> None:
    kari = ChatPerson(runtime.engine, "kari")
    kari.submit()
    kari.submit(title="Gatelys langs skoleveien", area="Areal og transport",
                description="Skoleveien er mørk om vinteren; barna trenger gatelys hele veien.")
    client = web_client(runtime)
    response = client.get("/ideer", params={"q": query}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/ideer/KI-2"
    with Session(runtime.db) as db:
        idea = db.get(Idea, 2)
        assert idea is not None
        runtime.ideas.hide(db, idea, "Personopplysninger i teksten", by="moderator-ola")
        db.commit()
    hidden = client.get("/ideer", params={"q": query}, follow_redirects=False)
    assert hidden.status_code == 200 and "Gatelys" not in hidden.text  # a search, finds none
    assert client.get("/ideer?q=KI-999", follow_redirects=False).status_code == 200


def test_board_language_links_keep_filters_search_and_page(runtime: Runtime) -> None:
    ChatPerson(runtime.engine, "kari").submit()
    client = web_client(runtime)
    page = client.get("/ideer?status=useful&q=benker&side=2&lang=nn").text
    assert 'href="?status=useful&amp;q=benker&amp;side=2&amp;lang=en"' in page
    assert 'href="?lang=en"' in client.get("/ideer").text
    english = client.get("/ideer?status=new&lang=en").text
    assert '<html lang="en">' in english and "KI-1" in english
    assert '<option value="new" selected>' in english


def test_board_pages_by_twenty(runtime: Runtime) -> None:
    with Session(runtime.db) as db:
        for n in range(45):
            db.add(Idea(title=f"Idé nummer {n}", description="d" * 30, channel="web"))
        db.commit()
    client = web_client(runtime)
    first = client.get("/ideer").text
    assert len(re.findall(r'<li>\s*<h2>', first)) == 20 and "Side 1 av 3" in first
    last = client.get("/ideer?side=3").text
    assert len(re.findall(r'<li>\s*<h2>', last)) == 5


def _refs(page: str) -> list[str]:
    return re.findall(r'<h2><a href="/ideer/(KI-\d+)">', page)


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]*)" rel="{rel}">', page)
    return html.unescape(found.group(1)) if found else None


def test_board_next_and_previous_seek_from_the_page_edge(runtime: Runtime) -> None:
    """Following "next" to the end shows every listed idea once, newest first, also when two
    share a timestamp; "previous" goes back to the same pages; a page asked for by number
    (nearer the old end) is the same page; hidden and merged ideas are neither listed nor
    counted."""
    when = datetime(2026, 3, 1, tzinfo=UTC)
    with Session(runtime.db) as db:
        for n in range(1, 51):  # KI-1 … KI-50; KI-20 and KI-21 at the same moment
            at = when + timedelta(minutes=min(n, 20) if n <= 21 else n)
            db.add(Idea(title=f"Idé nummer {n}", description="d" * 30, channel="web",
                        focus_area="Folkehelse" if n % 2 else "Annet", created_at=at))
        db.commit()
        runtime.ideas.hide(db, get_idea(db, 7), "personopplysninger", by="test")
        runtime.ideas.merge(db, get_idea(db, 8), get_idea(db, 9), by="test")
        db.commit()
    client = web_client(runtime)
    expected = [f"KI-{n}" for n in range(50, 0, -1) if n not in (7, 8)]
    page = client.get("/ideer").text
    assert "48 idéer" in page and "Side 1 av 3" in page
    pages, seen = [page], _refs(page)
    while (following := _link(pages[-1], "next")) is not None:
        assert "etter=KI-" in following
        pages.append(client.get(following).text)
        seen += _refs(pages[-1])
    assert seen == expected and len(pages) == 3 and "Side 3 av 3" in pages[-1]
    back = _link(pages[-1], "prev")
    assert back is not None and "foer=KI-" in back
    assert _refs(client.get(back).text) == _refs(pages[1])
    assert _refs(client.get("/ideer?side=3").text) == _refs(pages[2])  # from the old end
    assert _refs(client.get("/ideer?side=2").text) == _refs(pages[1])
    area = client.get("/ideer?omrade=Folkehelse").text
    assert "24 idéer" in area and set(_refs(area)) <= {f"KI-{n}" for n in range(1, 51, 2)}
    merged = client.get("/ideer?status=merged").text
    assert "1 idé" in merged and _refs(merged) == ["KI-8"]


def test_idea_page_history_and_support_from_the_board(runtime: Runtime) -> None:
    kari = ChatPerson(runtime.engine, "kari")
    kari.submit()
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None
        runtime.ideas.set_status(db, idea, Status.USEFUL, by="moderator-ola",
                                 note="Parkvesenet ser på det")
        db.commit()
    client = web_client(runtime)
    page = client.get("/ideer/KI-1").text
    assert "Nyttig" in page and "Parkvesenet ser på det" in page and IDEA["place"] in page
    assert "moderator-ola" not in page and "kari" not in page
    assert 'href="/chat?stott=KI-1"' in page
    assert client.get("/ideer/KI-99").status_code == 404
    person = WebPerson(client)
    person.open("/chat?stott=KI-1")
    person.press("Støtt KI-1")
    assert "Du støtter nå KI-1" in person.page
    with Session(runtime.db) as db:
        assert len(db.exec(select(Support).where(Support.idea_id == 1)).all()) == 1


def test_report_page_has_chart_and_table(runtime: Runtime) -> None:
    ChatPerson(runtime.engine, "kari").submit()
    page = web_client(runtime).get("/rapport").text
    assert "<svg" in page and 'role="img"' in page and "<table>" in page
    assert "Realiseringsgrad" in page


@pytest.mark.parametrize(("query", "header", "lang"), [
    ("?lang=en", "", "en"), ("", "nn-NO,nn;q=0.9", "nn"), ("", "de,en;q=0.5", "en"),
    ("", "", "nb")])
def test_language_by_parameter_or_header(runtime: Runtime, query: str, header: str,
                                         lang: str) -> None:
    client = web_client(runtime)
    headers = {"Accept-Language": header} if header else {}
    assert f'<html lang="{lang}">' in client.get("/ideer" + query, headers=headers).text


def test_language_is_remembered_in_the_session(runtime: Runtime) -> None:
    client = web_client(runtime)
    client.get("/chat?lang=nn")
    assert '<html lang="nn">' in client.get("/rapport").text


def test_accept_language_ranking() -> None:
    assert accept_language("en;q=0.5, nb;q=0.9") == "nb"
    assert accept_language("no") == "nb"
    assert accept_language("fr, de") is None


def test_reply_rendering_buttons_and_escaping() -> None:
    from zoneinfo import ZoneInfo

    renderer = Renderer(ZoneInfo("Europe/Oslo"))
    reply = Reply("Velg <b>én</b>", (Choice("Ja & nei", "7:yes"), Choice("Nei", "7:no")),
                  links=(("Les mer", "https://example.org/?a=1&b=2"),))
    log = str(renderer.log([Turn("<i>hei</i>", (reply,))], "nb"))
    assert "Velg &lt;b&gt;én&lt;/b&gt;" in log and "&lt;i&gt;hei&lt;/i&gt;" in log
    assert 'href="https://example.org/?a=1&amp;b=2"' in log
    controls = str(renderer.controls(reply.choices, "nb", csrf="tok", turn="turn12345"))
    assert '<button type="submit" name="choice" value="7:yes">Ja &amp; nei</button>' in controls
    assert 'name="csrf" value="tok"' in controls


def test_plural_forms() -> None:
    assert translator("nb").plural("web.supporters", 1) == "1 støttespiller"
    assert translator("nb").plural("web.supporters", 3) == "3 støttespillere"
    assert translator("nn").plural("web.supporters", 2) == "2 støttespelarar"
    assert translator("en").plural("web.supporters", 1) == "1 supporter"


def test_widget_cors_only_for_configured_origins(runtime: Runtime) -> None:
    runtime.settings.web_origins = ["https://www.kommune.no"]
    client = web_client(runtime)
    script = client.get("/widget.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    allowed = client.get("/widget.json?lang=en", headers={"Origin": "https://www.kommune.no"})
    assert allowed.headers["access-control-allow-origin"] == "https://www.kommune.no"
    assert allowed.json()["label"] == "Do you have an idea?"
    other = client.get("/widget.json", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_personal_link_opens_the_same_person_elsewhere_until_erased(runtime: Runtime) -> None:
    phone = WebPerson(web_client(runtime))
    phone.submit(IDEA["title"], IDEA["description"])
    link = re.search(r'href="(/mine/[^"]+)"', phone.page)
    assert link is not None
    laptop = web_client(runtime)
    assert laptop.get(link.group(1), follow_redirects=False).status_code == 303
    other = WebPerson(laptop)
    assert "KI-1" in other.say("/mine")  # the same person: their idea is theirs
    assert laptop.get("/mine/forged-token").status_code == 404
    other.say("/slett")
    other.press("Ja, slett dataene mine")
    assert web_client(runtime).get(link.group(1)).status_code == 404


def test_location_shared_at_the_place_step(runtime: Runtime) -> None:
    client = web_client(runtime)
    person = WebPerson(client)
    person.say("/ny")
    person.say(IDEA["title"])
    person.say(IDEA["description"])
    page = person.press(IDEA["area"])
    assert 'class="location" hidden' in page  # offered by the script, invisible without it
    response = client.post("/chat", data={**person.form(), "latitude": "59.83",
                                          "longitude": "10.43"}, follow_redirects=False)
    assert response.status_code == 303
    person.open()
    person.press("Nei")
    if "Min idé er ny" in person.buttons():
        person.press("Min idé er ny")
    person.press("Send inn")
    with Session(runtime.db) as db:
        idea = db.get(Idea, 1)
        assert idea is not None and (idea.latitude, idea.longitude) == (59.83, 10.43)
    board = client.get("/ideer/KI-1").text
    assert "59.83" not in board  # coordinates are never public


@pytest.mark.parametrize("publish", ["immediately", "after-review"])
def test_board_counts_read_the_covering_index_alone(runtime: Runtime, publish: str) -> None:
    """Every count the board makes (each status and focus area, alone and together) is
    answered from `ix_idea_board_count` without reading the table (SQLite's plan; the figures
    are benchmarks/web_load.py's)."""
    if runtime.db.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    for status in (None, *(s.value for s in Status)):
        for area in (None, "Folkehelse"):
            query = select(func.count()).select_from(Idea)
            if area:
                query = query.where(Idea.focus_area == area)
            query = public_ideas(query, publish, status=status, counting=True)
            compiled = query.compile(runtime.db, compile_kwargs={"literal_binds": True})
            with runtime.db.connect() as conn:
                plan = " ".join(row[-1] for row in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {compiled}"))
            assert "COVERING INDEX ix_idea_board_count" in plan, (status, area, plan)


def test_pages_say_sendt_inn_in_nynorsk_and_one_word_for_focus_area(runtime: Runtime) -> None:
    ChatPerson(runtime.engine, "kari").submit()
    client = web_client(runtime)
    assert "<dt>Sendt inn</dt>" in client.get("/ideer/KI-1?lang=nn").text
    assert "Sendt inn" in client.get("/rapport?lang=nn").text
    board = client.get("/ideer?lang=nb").text
    assert "Satsningsområde" in board and "Satsingsområde" not in board


def test_refusals_are_small_pages_in_the_persons_language(runtime: Runtime) -> None:
    """A failed CSRF check (cookies blocked, a stale page), an invalid personal link and an
    unknown address: the site's page, in the session's language, with a link on."""
    client = web_client(runtime)
    WebPerson(client).open("/chat?lang=nn")
    refused = client.post("/chat", data={"text": "/ny", "csrf": "wrong"})
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert '<html lang="nn">' in refused.text and "Meldinga vart ikkje send" in refused.text
    assert 'href="/chat">Til chatten' in refused.text
    no_cookie = web_client(runtime).post("/chat", data={"text": "/ny", "csrf": "x"},
                                         headers={"Accept-Language": "en"})
    assert no_cookie.status_code == 403 and "allow cookies for this site" in no_cookie.text
    link = client.get("/mine/forged-token")
    assert link.status_code == 404 and "Denne lenkja er ikkje gyldig (lenger)." in link.text
    assert "Ugyldig lenkje" in link.text
    assert '<html lang="nn">' in link.text
    unknown = web_client(runtime).get("/finnesikke")
    assert unknown.status_code == 404 and '<html lang="nb">' in unknown.text
    assert "Fant ikke siden" in unknown.text and 'href="/ideer"' in unknown.text
    assert client.get("/finnesikke").text.count("Fann ikkje sida") == 2  # title and heading


def test_merged_idea_page_names_the_idea_it_went_into_once(runtime: Runtime) -> None:
    merge_a_second_idea_into_the_first(runtime)
    with Session(runtime.db) as db:
        assert get_idea(db, 2).public_note is None  # no "→ KI-1" shown as a note
    page = html.unescape(web_client(runtime).get("/ideer/KI-2").text)
    assert f'slått sammen med KI-1: <a href="/ideer/KI-1">{IDEA["title"]}</a>' in page
    assert "→" not in page
    english = html.unescape(web_client(runtime).get("/ideer/KI-2?lang=en").text)
    assert f'merged into KI-1: <a href="/ideer/KI-1">{IDEA["title"]}</a>' in english


def test_report_months_chart_keeps_its_size_and_labels_read_as_months(runtime: Runtime) -> None:
    """One month of ideas: a chart 60 units wide drawn at that size (not stretched to the
    column), labelled with the month's name and the year, not "26-12"."""
    from babel.dates import format_date

    ChatPerson(runtime.engine, "kari").submit()
    now = datetime.now(runtime.settings.zone)
    page = web_client(runtime).get("/rapport?lang=en").text
    assert 'width="60" height="200" viewBox="0 0 60 200" class="chart months"' in page
    assert f'class="label">{format_date(now, "LLL", locale="en_GB")}</text>' in page
    assert f'class="label">{now.year}</text>' in page
    assert f"<th scope=\"row\">{now:%Y-%m}</th>" in page
    assert f">{now:%y-%m}<" not in page
