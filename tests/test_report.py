"""The realisation report: every figure checked on a hand-built database with a known answer
(merged and declined ideas, a month without ideas, an idea whose local and UTC months differ,
erased authors and supporters, benefit answers, the triage queue, a campaign)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.ideas import book
from bot.reports.realisation import compute, window
from dialogs.lifecycle import Status
from storage.db import transaction
from storage.models import BenefitAnswer, Campaign, DuplicateCandidate, Person

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO).astimezone(UTC)  # type: ignore[misc]


def build(db: Engine) -> None:
    """The known database (Oslo time):

    KI-1 2024-01-10 Folkehelse/telegram by kari: useful +5 d, realised +60 d; ola supports;
         benefit yes (kari), partly (ola)
    KI-2 2024-02-01 00:30 (= 2024-01-31 UTC) Areal og transport/terminal by eva (erased later):
         useful +10 d, declined
    KI-3 2024-02-05 Areal og transport/telegram by ola: merged into KI-2 (ola now supports KI-2)
    —    no idea in March 2024
    KI-4 2024-04-02 no area/import, no author: new; per supports
    KI-5 2024-04-20 23:30 Folkehelse/telegram by per (erased later), campaign: useful +2 d,
         realised +10 d; benefit no (per)
    KI-6 2024-04-25 Folkehelse/telegram by kari, campaign: new; ola and per support
    KI-7 2023-12-20 Vekst og utvikling/telegram by ola: useful, realised; benefit yes
    """
    ideas = book.IdeaBook()  # the report reads what happened; nothing needs to follow
    with transaction(db) as s:
        people = {}
        for name in ("kari", "ola", "per", "eva"):
            person = Person(channel="telegram", channel_user_id=name, display_name=name.title())
            s.add(person)
            s.flush()
            people[name] = person.id
        campaign = Campaign(title="Grønnere sentrum", question="Hva vil du ha?",
                            opens_at=oslo(2024, 4, 1), closes_at=oslo(2024, 4, 30))
        s.add(campaign)
        s.flush()

        def idea(when: datetime, area: str | None, channel: str, author: str | None,
                 campaign_id: int | None = None):  # type: ignore[no-untyped-def]
            return ideas.create_idea(s, book.NewIdea(
                title=f"Idé fra {when:%Y-%m-%d}", description="En beskrivelse som er lang nok.",
                channel=channel, focus_area=area, author_id=people.get(author or ""),
                campaign_id=campaign_id, created_at=when), by="test")

        def move(i, status: Status, when: datetime, note: str | None = None):  # type: ignore[no-untyped-def]
            ideas.set_status(s, i, status, by="test", note=note, at=when)

        ki1 = idea(oslo(2024, 1, 10, 9), "Folkehelse", "telegram", "kari")
        move(ki1, Status.USEFUL, oslo(2024, 1, 15, 9))
        move(ki1, Status.REALISED, oslo(2024, 3, 15, 9))
        ideas.add_support(s, ki1, people["ola"])
        ki2 = idea(oslo(2024, 2, 1, 0, 30), "Areal og transport", "terminal", "eva")
        ki3 = idea(oslo(2024, 2, 5, 12), "Areal og transport", "telegram", "ola")
        ideas.merge(s, ki3, ki2, by="test", at=oslo(2024, 2, 6, 12))
        move(ki2, Status.USEFUL, oslo(2024, 2, 11, 0, 30))
        move(ki2, Status.DECLINED, oslo(2024, 3, 1, 12), note="Ikke i denne planperioden")
        ki4 = idea(oslo(2024, 4, 2, 12), None, "import", None)
        ideas.add_support(s, ki4, people["per"])
        ki5 = idea(oslo(2024, 4, 20, 23, 30), "Folkehelse", "telegram", "per", campaign.id)
        move(ki5, Status.USEFUL, oslo(2024, 4, 22, 23, 30))
        move(ki5, Status.REALISED, oslo(2024, 5, 2, 23, 30))
        ki6 = idea(oslo(2024, 4, 25, 12), "Folkehelse", "telegram", "kari", campaign.id)
        ideas.add_support(s, ki6, people["ola"])
        ideas.add_support(s, ki6, people["per"])
        ki7 = idea(oslo(2023, 12, 20, 12), "Vekst og utvikling", "telegram", "ola")
        move(ki7, Status.USEFUL, oslo(2023, 12, 21, 12))
        move(ki7, Status.REALISED, oslo(2024, 1, 20, 12))

        for idea_id, person, answer in ((ki1.id, "kari", "yes"), (ki1.id, "ola", "partly"),
                                        (ki5.id, "per", "no"), (ki7.id, "ola", "yes")):
            s.add(BenefitAnswer(idea_id=idea_id, person_id=people[person], answer=answer))
        for a, b, state, age in ((ki4.id, ki6.id, "pending", 3), (ki1.id, ki6.id, "pending", 1),
                                 (ki1.id, ki5.id, "resolved", 10), (ki2.id, ki3.id, "merged", 9),
                                 (ki3.id, ki7.id, "merged", 8),
                                 (ki2.id, ki7.id, "not_duplicate", 7)):
            s.add(DuplicateCandidate(idea_a_id=a, idea_b_id=b, state=state, score=50,
                                     created_at=NOW - timedelta(days=age)))
        for name in ("eva", "per"):
            ideas.erase_person(s, s.get(Person, people[name]))


@pytest.fixture
def db(settings) -> Engine:  # type: ignore[no-untyped-def]
    from storage.db import make_engine

    engine = make_engine(settings.database_url)
    build(engine)
    yield engine
    engine.dispose()


def figures(db: Engine, **kwargs) -> dict:  # type: ignore[no-untyped-def,type-arg]
    with Session(db) as s:
        return compute(s, now=NOW, zone=OSLO, **kwargs)


def test_window_figures_with_known_answer(db: Engine) -> None:
    r = figures(db, start=date(2024, 1, 1), end=date(2024, 4, 30))
    assert r["period"] == {"from": "2024-01-01", "to": "2024-04-30"}
    assert (r["submitted"], r["merged"], r["realised"]) == (6, 1, 2)
    assert r["realisation_rate"] == 0.4  # 2 realised ÷ (6 submitted − 1 merged)
    assert r["funnel"] == {"new": 2, "useful": 0, "realised": 2, "declined": 1, "merged": 1}
    assert r["stages"] == {"submitted": 5, "useful": 3, "realised": 2}


def test_by_area_and_channel(db: Engine) -> None:
    r = figures(db, start=date(2024, 1, 1), end=date(2024, 4, 30))
    area = r["by_area"]
    assert list(area) == ["Folkehelse", "Areal og transport", "Uten område"]
    assert area["Folkehelse"] | {"statuses": None} == {
        "submitted": 3, "merged": 0, "realised": 2, "rate": 0.6667, "statuses": None}
    assert area["Areal og transport"]["statuses"] == {
        "new": 0, "useful": 0, "realised": 0, "declined": 1, "merged": 1}
    assert (area["Areal og transport"]["rate"], area["Uten område"]["submitted"]) == (0.0, 1)
    channel = r["by_channel"]
    assert {k: (v["submitted"], v["merged"], v["realised"], v["rate"])
            for k, v in channel.items()} == {
        "telegram": (4, 1, 2, 0.6667), "terminal": (1, 0, 0, 0.0), "import": (1, 0, 0, 0.0)}
    english = figures(db, start=date(2024, 1, 1), end=date(2024, 4, 30), locale="en")
    assert "No focus area" in english["by_area"]


def test_by_month_is_local_and_has_no_gaps(db: Engine) -> None:
    months = figures(db, start=date(2024, 1, 1), end=date(2024, 4, 30))["by_month"]
    assert list(months) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    # KI-2 was sent at 00:30 on 1 February in Oslo (still January in UTC).
    assert (months["2024-01"]["submitted"], months["2024-01"]["rate"]) == (1, 1.0)
    assert months["2024-02"]["statuses"] == {
        "new": 0, "useful": 0, "realised": 0, "declined": 1, "merged": 1}
    assert months["2024-02"]["rate"] == 0.0
    assert months["2024-03"] == {"submitted": 0, "merged": 0, "realised": 0, "rate": 0.0,
                                 "statuses": dict.fromkeys(
                                     ("new", "useful", "realised", "declined", "merged"), 0)}
    assert (months["2024-04"]["submitted"], months["2024-04"]["rate"]) == (3, 0.3333)


def test_medians_support_benefit_triage_campaigns(db: Engine) -> None:
    r = figures(db, start=date(2024, 1, 1), end=date(2024, 4, 30))
    # new→useful: 5, 10, 2 days; useful→realised: 60 (leap February), 10 days
    assert r["median_days"] == {"new_to_useful": 5.0, "useful_to_realised": 35.0}
    # backed by someone else: KI-1, KI-2 (ola, through the merge), KI-4, KI-6 — of 5
    assert (r["supported"], r["supported_share"]) == (4, 0.8)
    assert r["benefit_check"] == {"Ja": 1, "Delvis": 1, "Nei": 1}
    assert r["triage"] == {"pending": 2, "oldest_days": 3.0,
                           "oldest_at": (NOW - timedelta(days=3)).isoformat(),
                           "decided": 3, "merged": 2, "precision": 0.6667}
    assert [(c["title"], c["ideas"], c["supporters"], c["realised"]) for c in r["campaigns"]] \
        == [("Grønnere sentrum", 2, 2, 1)]


def test_all_time_and_narrow_windows(db: Engine) -> None:
    everything = figures(db)
    assert everything["period"] == {"from": None, "to": None}
    assert (everything["submitted"], everything["realisation_rate"]) == (7, 0.5)
    assert everything["benefit_check"] == {"Ja": 2, "Delvis": 1, "Nei": 1}
    assert list(everything["by_month"])[0] == "2023-12"
    # The end date is inclusive, in local time: KI-5 came at 23:30 on 20 April.
    assert figures(db, start=date(2024, 4, 1), end=date(2024, 4, 20))["submitted"] == 2
    assert figures(db, start=date(2024, 4, 1), end=date(2024, 4, 19))["submitted"] == 1
    only_may = figures(db, start=date(2024, 5, 1), end=date(2024, 5, 31))
    assert only_may["campaigns"] == [] and only_may["by_month"] == {}
    assert only_may["triage"]["pending"] == 2  # the queue is "now", not windowed


def test_erased_people_leave_the_figures_unchanged(db: Engine) -> None:
    with Session(db) as s:
        erased = s.exec(select(Person).where(Person.erased_at.is_not(None))).all()  # type: ignore[union-attr]
    assert len(erased) == 2 and all(p.display_name is None for p in erased)
    r = figures(db)
    assert r["by_channel"]["terminal"]["submitted"] == 1  # eva's idea stays
    assert r["benefit_check"]["Nei"] == 1  # per's answer stays (anonymous)


def test_empty_database_and_bad_window(settings) -> None:  # type: ignore[no-untyped-def]
    from storage.db import make_engine

    engine = make_engine(settings.database_url)
    try:
        r = figures(engine)
    finally:
        engine.dispose()
    assert (r["submitted"], r["realisation_rate"], r["by_month"]) == (0, 0.0, {})
    assert r["median_days"] == {"new_to_useful": None, "useful_to_realised": None}
    assert r["triage"] == {"pending": 0, "oldest_at": None, "oldest_days": None,
                           "decided": 0, "merged": 0, "precision": None}
    assert r["benefit_check"] == {"Ja": 0, "Delvis": 0, "Nei": 0}
    with pytest.raises(ValueError):
        window(date(2024, 5, 1), date(2024, 4, 1), OSLO)


def test_triage_precision_is_shown_in_the_table_and_csv(db: Engine) -> None:
    from rich.console import Console

    from bot.reports import render

    r = figures(db)
    console = Console(record=True, width=200)
    render.print_table(r, "nb", console)
    text = console.export_text()
    assert "Treffsikkerhet i vurderingskøen" in text and "(2 av 3)" in text
    assert {"section": "triage", "name": "precision", "value": 0.6667} in render.csv_rows(r)
