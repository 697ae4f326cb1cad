"""The duplicate detector as a library: normalisation, the index, scoring and thresholds."""

from __future__ import annotations

import itertools
import threading
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import config
from bot.config import ConfigError
from bot.dedup import DuplicateFinder
from bot.dedup.detector import DEFAULT_DEDUP_THRESHOLD, DEFAULT_TRIAGE_THRESHOLD, Match
from bot.dedup.normalize import STOP_WORDS, clean, stem, tokenize, words

DEDUP_ENV, TRIAGE_ENV = "KOMINN_DEDUP_THRESHOLD", "KOMINN_TRIAGE_THRESHOLD"

IDEAS = {
    "KI-1": (
        "Flere benker langs turstien ved Semsvannet",
        "Det er langt mellom hvilestedene rundt Semsvannet. Eldre trenger steder å sitte.",
    ),
    "KI-2": (
        "Gatelys på skoleveien til Nesbru skole",
        "Skoleveien er mørk om vinteren, og barna går til skolen i mørket.",
    ),
    "KI-3": (
        "Gratis buss for pensjonister",
        "La alle over 67 år reise gratis med bussen i kommunen.",
    ),
    "KI-4": (
        "Hundepark i Vollen",
        "Hundeeiere trenger et inngjerdet område der hundene kan løpe fritt.",
    ),
    "KI-5": (
        "Kunstgress på Føyka",
        "Gressbanen på Føyka er gjørmete hele høsten. Legg kunstgress.",
    ),
    "KI-6": (
        "Digital innbyggerportal",
        "Alle skjemaer i kommunen bør kunne fylles ut digitalt.",
    ),
}


@pytest.fixture(autouse=True)
def _no_threshold_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEDUP_ENV, raising=False)
    monkeypatch.delenv(TRIAGE_ENV, raising=False)


@pytest.fixture
def finder() -> DuplicateFinder:
    f = DuplicateFinder()
    for ref, (title, description) in IDEAS.items():
        f.add(ref, title, description)
    return f


# ----------------------------------------------------------------------------- normalisation


def test_nfkc_and_casefold() -> None:
    assert words("ＦＵＬＬ Bredde") == ["full", "bredde"]
    assert words("STRASSE Straße") == ["strasse", "strasse"]


def test_norwegian_letters_are_kept() -> None:
    assert words("Bålplass på Ødegården, ÆRFUGL") == ["bålplass", "på", "ødegården", "ærfugl"]
    assert stem("får") != stem("for")


def test_urls_html_and_markdown_are_removed() -> None:
    text = "Se **dette**: <b>ny benk</b> https://kommune.no/sak?id=1 [kart](http://x.no) &amp; mer"
    assert "https" not in clean(text)
    assert words(text) == ["se", "dette", "ny", "benk", "kart", "mer"]


def test_numbers_are_kept_whole() -> None:
    assert tokenize("Buss 31 går hvert 2,5 minutt fra kl. 21:00 i 2025") == [
        "buss",
        "31",
        "går",
        "hvert",
        "2,5",
        "minutt",
        "kl",
        "21:00",
        "2025",
    ]


def test_stop_words_of_three_languages_are_dropped() -> None:
    assert tokenize("Vi ønsker at det blir en benk her") == ["ønsk", "benk"]
    assert tokenize("Eg meiner det ikkje er nokon benk her") == ["mein", "benk"]
    assert tokenize("There is no bench at the park") == ["bench", "park"]
    assert {"og", "ikkje", "the"} <= STOP_WORDS


def test_inflected_forms_share_a_stem() -> None:
    assert len({stem(w) for w in ("benk", "benker", "benken", "benkene")}) == 1
    assert len({stem(w) for w in ("lekeplass", "lekeplassen", "lekeplasser")}) == 1
    assert stem("veien") == stem("vei")  # Snowball alone leaves short vowel stems alone
    assert stem("byen") == stem("by")
    assert stem("gatelys") == stem("gatelyset") == stem("gatelysene")


def test_nynorsk_forms_meet_bokmaal() -> None:
    assert stem("vegen") == stem("veien")
    assert stem("skulen") == stem("skolen")


def test_camel_case_and_glued_digits_yield_parts() -> None:
    assert words("SkoleVei E18") == ["skolevei", "skole", "vei", "e18", "e", "18"]


# ----------------------------------------------------------------------------- the finder


def test_norwegian_near_duplicate_is_found(finder: DuplicateFinder) -> None:
    matches = finder.similar(
        "Vi trenger flere benker ved Semsvannet",
        "Når jeg går tur rundt vannet med min mor finner vi ikke steder å sette oss.",
    )
    assert matches and matches[0].ref == "KI-1"
    assert matches[0].score >= finder.dedup_threshold


def test_unrelated_idea_is_not_found(finder: DuplicateFinder) -> None:
    found = finder.similar("Lengre åpningstid på biblioteket", "Biblioteket stenger for tidlig.")
    assert found == []


def test_typos_and_nynorsk_still_match(finder: DuplicateFinder) -> None:
    matches = finder.similar("Fleire benkker ved Semsvanet", "")
    assert [m.ref for m in matches][:1] == ["KI-1"]


def test_compound_and_its_head_are_related(finder: DuplicateFinder) -> None:
    # word relations, without the discounts for two-word texts (tested on their own)
    finder.channels = replace(finder.channels, short=0.0, rarest=0.0)
    with_compound = finder.score("Mørk skolevei", "", "Lys på veien", "")
    without = finder.score("Mørk skole", "", "Lys på veien", "")
    assert with_compound > without == 0.0
    assert finder.score("Sykkelparkering", "", "Parkering for sykler", "") > 0
    assert finder.score("Flere gatelys", "", "Bedre lys", "") > 0


def test_a_typo_in_a_short_word_still_decides(finder: DuplicateFinder) -> None:
    """Three ideas alike but for one short word; the query misspells it ("holl" for "hull"),
    which no spelling rule pairs. The letters it still shares decide, not the ref order."""
    f = DuplicateFinder(triage_threshold=0)
    f.add("KI-1", "Lys i veien ved Kolsås", "")
    f.add("KI-2", "Benk i veien ved Kolsås", "")
    f.add("KI-3", "Hull i veien ved Kolsås", "")
    assert f.similar("Holl i veien ved Kolsås", "")[0].ref == "KI-3"


def test_shared_letters_without_a_related_word_score_zero() -> None:
    """Surface likeness alone is no shared idea: "sykkelparkering" and "sykkelreparasjon"
    share many letter triples but no word."""
    f = DuplicateFinder(triage_threshold=0)
    f.add("KI-1", "Sykkelreparasjon", "")
    assert f.score("Sykkelparkering", "", "Sykkelreparasjon", "") == 0.0
    assert f.similar("Sykkelparkering", "") == []


def test_copied_phrasing_counts() -> None:
    """Of two ideas with the same words, the one whose phrasing the query copies is closer."""
    f = DuplicateFinder(triage_threshold=0)
    copied = ("Benker ved Semsvannet", "Det er for få benker rundt Semsvannet for eldre.")
    reworded = ("Semsvannet og benker", "Eldre rundt Semsvannet: benker er det få av.")
    query = ("Få benker", "Det er for få benker rundt Semsvannet for eldre")
    assert f.score(*query, *copied) > f.score(*query, *reworded)


def test_results_are_best_first_and_limited(finder: DuplicateFinder) -> None:
    for ref in ("KI-7", "KI-8", "KI-9"):
        finder.add(ref, f"Flere benker ved Semsvannet {ref[-1]}", "Sett ut benker.")
    matches = finder.similar("Flere benker ved Semsvannet", "Benker rundt vannet", limit=2)
    assert len(matches) == 2
    assert matches[0].score >= matches[1].score
    assert finder.similar("Flere benker ved Semsvannet", limit=0) == []


def test_only_matches_at_or_above_triage_threshold(finder: DuplicateFinder) -> None:
    query = ("Benker og gatelys", "Flere benker ved Semsvannet og lys på skoleveien")
    loose = DuplicateFinder(dedup_threshold=100, triage_threshold=0)
    strict = DuplicateFinder(dedup_threshold=100, triage_threshold=99)
    for f in (loose, strict):
        for ref, (title, description) in IDEAS.items():
            f.add(ref, title, description)
    found = loose.similar(*query, limit=10)
    assert len(found) >= 2
    assert all(m.score >= 0 for m in found)
    assert strict.similar(*query, limit=10) == []
    assert all(m.score >= finder.triage_threshold for m in finder.similar(*query, limit=10))


def test_readding_a_ref_replaces_its_text(finder: DuplicateFinder) -> None:
    finder.add("KI-1", "Ny svømmehall i Asker", "Asker trenger et nytt basseng.")
    assert len(finder) == len(IDEAS)
    assert all(m.ref != "KI-1" for m in finder.similar("Flere benker ved Semsvannet"))
    assert finder.similar("Svømmehall i Asker")[0].ref == "KI-1"


def test_removed_idea_is_not_returned(finder: DuplicateFinder) -> None:
    finder.remove("KI-1")
    finder.remove("KI-404")  # unknown: ignored
    assert "KI-1" not in finder
    assert len(finder) == len(IDEAS) - 1
    assert all(m.ref != "KI-1" for m in finder.similar("Flere benker ved Semsvannet"))
    finder.add("KI-1", *IDEAS["KI-1"])  # its slot comes back cleanly
    assert finder.similar("Flere benker ved Semsvannet")[0].ref == "KI-1"


def test_len_and_contains() -> None:
    f = DuplicateFinder()
    assert len(f) == 0 and "KI-1" not in f
    assert f.similar("Flere benker") == []
    f.add("KI-1", "Flere benker")
    assert len(f) == 1 and "KI-1" in f


def test_score_is_calibrated() -> None:
    f = DuplicateFinder()
    for ref, (title, description) in IDEAS.items():
        f.add(ref, title, description)
    same = f.score(*IDEAS["KI-1"], *IDEAS["KI-1"])
    assert same == pytest.approx(100.0)
    assert f.score(*IDEAS["KI-1"], *IDEAS["KI-6"]) == 0.0
    a, b = IDEAS["KI-1"], ("Vi trenger flere benker ved Semsvannet", "")
    assert f.score(*a, *b) == pytest.approx(f.score(*b, *a))
    assert 0.0 <= f.score(*a, *b) <= 100.0
    assert f.score("", "", "", "") == 0.0


def test_score_agrees_with_similar(finder: DuplicateFinder) -> None:
    query = ("Fleire benkker ved Semsvannet", "Eldre treng stader å sitje rundt vatnet")
    for match in finder.similar(*query, limit=10):
        assert finder.score(*query, *IDEAS[match.ref]) == pytest.approx(match.score)


def test_rare_shared_words_outweigh_common_ones() -> None:
    f = DuplicateFinder(triage_threshold=0)
    for i in range(30):
        f.add(f"KI-{i}", f"Bedre tilbud i kommunen nummer {i}", "Kommunen bør gjøre det bedre.")
    f.add("KI-100", "Bedre lekeplass i kommunen", "Kommunen bør bygge lekeplass.")
    f.add("KI-101", "Ny lekeplass ved Vardåsen", "")
    found = f.similar("Lekeplass ved Vardåsen", "Kommunen bør gjøre det bedre", limit=1)
    assert found[0].ref == "KI-101"


def test_match_is_a_frozen_dataclass() -> None:
    match = Match(ref="KI-1", score=80.0)
    with pytest.raises(FrozenInstanceError):
        match.score = 1.0  # type: ignore[misc]


# ----------------------------------------------------------------------------- thresholds


def test_default_thresholds() -> None:
    f = DuplicateFinder()
    assert f.dedup_threshold == DEFAULT_DEDUP_THRESHOLD
    assert f.triage_threshold == DEFAULT_TRIAGE_THRESHOLD
    assert 0 < DEFAULT_TRIAGE_THRESHOLD < DEFAULT_DEDUP_THRESHOLD < 100
    # One set of defaults: the detector's are the settings' own.
    assert (DEFAULT_DEDUP_THRESHOLD, DEFAULT_TRIAGE_THRESHOLD) == (
        config.DEFAULT_DEDUP_THRESHOLD, config.DEFAULT_TRIAGE_THRESHOLD)


def test_thresholds_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEDUP_ENV, "71.5")
    monkeypatch.setenv(TRIAGE_ENV, " 40 ")
    f = DuplicateFinder()
    assert (f.dedup_threshold, f.triage_threshold) == (71.5, 40.0)
    settings = config.load_settings()
    assert (settings.dedup_threshold, settings.triage_threshold) == (71.5, 40.0)
    explicit = DuplicateFinder(dedup_threshold=80, triage_threshold=20)
    assert (explicit.dedup_threshold, explicit.triage_threshold) == (80.0, 20.0)
    half = DuplicateFinder(dedup_threshold=80)  # the other one still comes from the settings
    assert (half.dedup_threshold, half.triage_threshold) == (80.0, 40.0)


def test_the_finder_asks_the_settings_only_when_it_must(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """Settings is the one reader of the configuration: given both thresholds, the finder
    reads nothing (a bad value elsewhere does not matter); without, it gets what Settings
    gets, `.env` included."""
    monkeypatch.setenv(DEDUP_ENV, "abc")
    assert DuplicateFinder(dedup_threshold=50, triage_threshold=30).dedup_threshold == 50.0
    monkeypatch.delenv(DEDUP_ENV)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"{DEDUP_ENV}=61\n", encoding="utf-8")
    assert DuplicateFinder().dedup_threshold == config.load_settings().dedup_threshold == 61.0


@pytest.mark.parametrize("raw", ["abc", "101", "-1", "nan"])
def test_bad_threshold_names_the_key(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(DEDUP_ENV, raw)
    with pytest.raises(ConfigError, match=DEDUP_ENV):
        DuplicateFinder()
    with pytest.raises(ValueError):
        DuplicateFinder(dedup_threshold=50, triage_threshold=150)


def test_a_triage_threshold_above_the_dedup_threshold_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs between the two would reach neither the citizen nor the moderators."""
    monkeypatch.setenv(TRIAGE_ENV, "50")
    with pytest.raises(ConfigError, match=f"{TRIAGE_ENV}: .*above {DEDUP_ENV} \\(40\\)"):
        config.load_settings()
    monkeypatch.setenv(DEDUP_ENV, "50")
    assert config.load_settings().triage_threshold == 50.0  # equal is allowed


# ----------------------------------------------------------------------------- properties


def test_concurrent_use_is_safe() -> None:
    f = DuplicateFinder(triage_threshold=0)
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, start + 200):
                f.add(f"KI-{i % 150}", f"Benk nummer {i} ved Semsvannet", "Flere benker")
                if i % 7 == 0:
                    f.remove(f"KI-{(i * 3) % 150}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(200):
                f.similar("Benker ved Semsvannet", "")
                f.score("Benk", "", "Benker", "")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k * 200,)) for k in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(f) <= 150


VOCABULARY = ["benk", "lys", "vei", "buss", "skole", "park", "Vollen", "Asker", "lekeplass", "sti"]
texts = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=6).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(
    corpus=st.lists(st.tuples(texts, texts), min_size=2, max_size=20),
    removed=st.sets(st.integers(0, 19)),
    query=texts,
)
def test_removing_ideas_leaves_the_index_as_if_they_were_never_added(
    corpus: list[tuple[str, str]], removed: set[int], query: str
) -> None:
    """Add everything, remove some, re-add one removed idea: the answers must equal those of a
    finder that only ever saw the ideas kept (slots are reused, postings must be clean)."""
    kept = [i for i in range(len(corpus)) if i not in removed]
    churned = DuplicateFinder(dedup_threshold=100, triage_threshold=0)
    fresh = DuplicateFinder(dedup_threshold=100, triage_threshold=0)
    for i, (title, description) in enumerate(corpus):
        churned.add(f"KI-{i}", title, description)
    for i in removed:
        churned.remove(f"KI-{i}")
    gone = sorted(removed & set(range(len(corpus))))
    if gone:
        kept.append(gone[0])
        churned.add(f"KI-{gone[0]}", *corpus[gone[0]])
    for i in kept:
        fresh.add(f"KI-{i}", *corpus[i])
    assert churned.similar(query, "", limit=30) == fresh.similar(query, "", limit=30)


@settings(max_examples=60, deadline=None)
@given(corpus=st.lists(st.tuples(texts, texts), min_size=1, max_size=25), query=texts)
def test_index_finds_what_a_full_scan_finds(corpus: list[tuple[str, str]], query: str) -> None:
    """The inverted index must not lose the best match a brute-force scan would find (it
    may rank it below one sharing more words: bot.dedup.ranking)."""
    f = DuplicateFinder(dedup_threshold=100, triage_threshold=0)
    for i, (title, description) in enumerate(corpus):
        f.add(f"KI-{i}", title, description)
    found = f.similar(query, "", limit=len(corpus))
    best = max(f.score(query, "", title, description) for title, description in corpus)
    if best == 0:
        assert found == []
    else:
        assert found and max(m.score for m in found) == pytest.approx(best)


def test_trigram_ids_beyond_16_bits_are_kept_whole() -> None:
    from bot.dedup.chargrams import CharGramIndex

    grams = CharGramIndex()
    many = frozenset(f"{n:05d}" for n in range(70_000))  # more trigram ids than 16 bits hold
    grams.add(0, frozenset({"abc", "bcd"}))
    grams.add(1, many | {"abc"})
    grams.add(2, frozenset({"abc", "69999"}))
    known = grams.known(frozenset({"abc", "69999"}))
    assert grams.jaccard(known, 2, 2) == 1.0
    assert grams.jaccard(known, 2, 1) == 2 / 70_001
    assert grams.jaccards(known, 2, [2, 1, 0]).tolist() == [  # 16- and 32-bit slots at once
        grams.jaccard(known, 2, slot) for slot in (2, 1, 0)]
    grams.remove(2)
    assert grams.jaccard(known, 2, 2) == 0.0
    assert 1 in grams.candidates(grams.known(frozenset({"69999"})), 3, 3)


def test_related_words_follow_the_vocabulary_as_ideas_come_and_go() -> None:
    """A query word's related indexed words are remembered between queries, but never past
    an add or remove that changes which words the ideas hold."""
    f = DuplicateFinder(dedup_threshold=100, triage_threshold=0)
    f.add("KI-1", "Hundepark i Vollen")
    assert f.similar("lekeplas", "") == []  # no idea has a word like it (yet)
    f.add("KI-2", "Lekeplass i Vollen")
    assert [m.ref for m in f.similar("lekeplas", "")] == ["KI-2"]
    assert f._vocabulary_neighbours(["lekeplas"])  # related word remembered
    f.remove("KI-2")
    assert f._vocabulary_neighbours(["lekeplas"]) == {}
    f.add("KI-3", "Lekeplass ved Semsvannet")  # the word is back
    assert [m.ref for m in f.similar("lekeplas", "")] == ["KI-3"]


WINTER = "Om vinteren er det mørkt og glatt for barn og eldre."


def _winter_path_base(dedup_threshold: float) -> DuplicateFinder:
    """Ideas about one beach: a rewording of KI-1 keeps its description word for word but
    names the thing otherwise; KI-2 shares the title's place words."""
    f = DuplicateFinder(dedup_threshold=dedup_threshold, triage_threshold=0)
    places = ["Vollen", "Heggedal", "Slemmestad", "Nesbru", "Borgen", "Holmen", "Tofte", "Sætre"]
    things = ["benker", "søppelkasser", "gatelys", "fortau", "lekeplass", "sykkelstativ"]
    for n, (place, thing) in enumerate(itertools.product(places, things), start=100):
        f.add(f"KI-{n}", f"Flere {thing} på {place}", f"Det er for få {thing} på {place}, og om "
              "vinteren er det mørkt og glatt for barn og eldre.")
    f.add("KI-1", "Strøing av stien til Hvalstrand bad", WINTER)
    f.add("KI-2", "Livredder på badeplassen på Hvalstrand", "Barn bader alene om sommeren.")
    return f


def test_matches_are_ordered_by_score_and_the_words_they_share() -> None:
    """The rare-word score ranks the lifeguard idea first (it shares "badeplassen på
    Hvalstrand"); the words the rewording kept tell its original apart. Scores unchanged."""
    f = _winter_path_base(dedup_threshold=40)
    query = ("Veien til badeplassen på Hvalstrand", WINTER)
    found = f.similar(*query, limit=2)
    assert [m.ref for m in found] == ["KI-1", "KI-2"]
    assert found[0].score < found[1].score  # by score alone the order would be the other
    assert found[0].score == pytest.approx(f.score(*query, "Strøing av stien til Hvalstrand bad",
                                                   WINTER))


def test_matches_shown_to_the_citizen_come_before_weaker_ones() -> None:
    """Those at or above the dedup threshold first, whatever words the weaker ones share."""
    f = _winter_path_base(dedup_threshold=50)
    found = f.similar("Veien til badeplassen på Hvalstrand", WINTER, limit=2)
    assert [m.ref for m in found] == ["KI-2", "KI-1"]
    assert found[0].score >= 50 > found[1].score
