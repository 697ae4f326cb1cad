"""One test per failure kind of the duplicate detector on civic text (issue: paraphrase,
morphology in the wrong language, a long description hiding a matching title, boilerplate,
short ideas about one place asking for different things), with made-up Norwegian and English
examples."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.dedup import DuplicateFinder
from bot.dedup.normalize import detect_language, tokenize, words
from bot.dedup.scoring import RAREST_WORD_PENALTY

BACKGROUND = [
    ("Hull i veien ved Kolsås", "Store hull i asfalten etter vinteren."),
    ("Kunstgress på Føyka", "Gressbanen er gjørmete hele høsten."),
    ("Toalett ved Semsvannet", "Det er ingen toaletter for turgåere."),
    ("Skatepark i Heggedal", "Ungdommen har ingen steder å skate."),
    ("Lekeplass i Slemmestad sentrum", "Barnefamilier mangler en lekeplass."),
    ("Repair the swimming pool", "The changing rooms at the pool are cold and broken."),
    ("Longer library opening hours", "The library closes too early on Saturdays."),
    ("Plant trees along the high street", "The high street has no shade in summer."),
]


@pytest.fixture
def finder() -> DuplicateFinder:
    f = DuplicateFinder(dedup_threshold=40, triage_threshold=0)
    for n, (title, description) in enumerate(BACKGROUND, start=1):
        f.add(f"KI-{n}", title, description)
    return f


def test_language_per_text_with_the_persons_choice_as_prior() -> None:
    assert detect_language(words("We should have more buses to the station")) == "en"
    assert detect_language(words("Eg vil ha fleire benkar, det er ikkje nok")) == "nn"
    assert detect_language(words("Jeg vil ha flere benker, det er ikke nok")) == "nb"
    assert detect_language(words("Semsvannet"), "nn") == "nn"  # nothing tells: the prior
    # only "in" tells (no Norwegian word): read as bokmål, as it was, the English words were
    # stemmed in Norwegian and "clicking" / "click" did not meet
    assert detect_language(words("right-clicking in Seamonkey Mail fails again")) == "en"
    assert detect_language(words("Hvorfor kan vi ikke be om flere benker")) == "nb"


def test_english_inflections_meet_in_english() -> None:
    # the Norwegian stemmer left "buses" and "bus" apart, and "children" and "child"
    assert tokenize("buses for the children") == tokenize("a bus for the child")


def test_nynorsk_and_bokmaal_forms_meet() -> None:
    assert tokenize("skulane og vegane") == tokenize("skolene og veiene")


def test_ordinals_and_number_words_meet() -> None:
    assert tokenize("the second floor") == tokenize("the 2nd floor")
    assert tokenize("femte klasse") == tokenize("5. klasse")


def test_paraphrase_with_few_shared_words(finder: DuplicateFinder) -> None:
    score = finder.score(
        "More buses to Heggedal in the evening",
        "The last bus leaves far too early.",
        "Better late public transport between Heggedal and Asker",
        "There are hardly any buses to Heggedal after ten in the evening.",
    )
    assert score >= finder.dedup_threshold


def test_a_long_description_does_not_hide_a_matching_title(finder: DuplicateFinder) -> None:
    title = "Åpent bibliotek på lørdager"
    long_text = (
        "Jeg foreslår at kommunen holder biblioteket åpent lenger på lørdager. Mange av oss "
        "jobber i uka og rekker ikke innom før det stenger. Det er et fint sted å være med "
        "barna i helgene, det har kafé, aviser, spill og lesesal, og skoleelever bruker det "
        "til lekser og prosjekter. Andre kommuner har hatt åpent lenge i mange år."
    )
    short = ("Lengre åpningstid på biblioteket lørdag", "Biblioteket stenger for tidlig.")
    with_title = finder.score(*short, title, long_text)
    without_title = finder.score(*short, "Forslag", long_text)
    assert with_title > without_title
    assert with_title >= finder.dedup_threshold


def test_boilerplate_learned_from_the_corpus_weighs_little(finder: DuplicateFinder) -> None:
    a = ("Jeg foreslår at kommunen lager en hundepark på Nesbru", "Hundeeiere mangler plass.")
    b = ("Jeg foreslår at kommunen lager en skatepark på Nesbru", "Ungdom vil skate.")
    before = finder.score(*a, *b)
    for n, topic in enumerate(["benker", "gatelys", "sykkelvei", "badebrygge", "toalett",
                               "lekeplass", "fortau", "busslomme", "hundepark", "ballbinge"]):
        finder.add(f"BP-{n}", f"Jeg foreslår at kommunen lager {topic}", f"Vi trenger {topic}.")
    after = finder.score(*a, *b)
    assert after < before


def test_short_texts_sharing_only_a_place_stay_below_the_threshold(
    finder: DuplicateFinder,
) -> None:
    assert finder.score("Toalett ved Semsvannet", "", "Parkering ved Semsvannet", "") < 40


def test_score_equals_similar(finder: DuplicateFinder) -> None:
    query = ("Skateanlegg for ungdom på Heggedal", "Ungdom i Heggedal ønsker seg en skatepark.")
    matches = finder.similar(*query, limit=8)
    assert matches
    for match in matches:
        title, description = BACKGROUND[int(match.ref.split("-")[1]) - 1]
        assert finder.score(*query, title, description) == pytest.approx(match.score)


@pytest.mark.parametrize(("same", "other", "different"), [
    ("Benk ved Hvalstad stasjon", "Flere benker på Hvalstad stasjon",
     "Sykkelparkering ved Hvalstad stasjon"),
    ("A bench at Hvalstad station", "More benches at Hvalstad station",
     "Bike racks at Hvalstad station"),
])
def test_same_place_different_object_loses_to_the_rarest_word_penalty(
    finder: DuplicateFinder, same: str, other: str, different: str,
) -> None:
    """Two short ideas about one place: the title's rarest word names the thing asked for.
    Missing from the other text it costs points; a plural or a compound of it does not."""
    for title in (same, other, different, "Flere søppelkasser i Vollen", "Flere busser til Asker",
                  "More buses to Asker", "More trees in Vollen"):  # "flere", "more": common
        finder.add(f"X-{title}", title, "")
    penalised = finder.score(same, "", different, "")
    assert finder.score(same, "", other, "") > penalised
    finder.channels = replace(finder.channels, rarest=0.0)
    assert finder.score(same, "", different, "") > penalised
    kept = finder.score(same, "", other, "")
    finder.channels = replace(finder.channels, rarest=RAREST_WORD_PENALTY)
    assert finder.score(same, "", other, "") == kept  # the object is there: no penalty


def test_the_rarest_word_penalty_leaves_long_texts_alone(finder: DuplicateFinder) -> None:
    story = ("The path is used by hundreds of walkers every weekend, families with prams, "
             "runners in the morning and older people who need to rest on the way round")
    a = ("Benches along the lake path at Semsvannet", f"{story}, and there are none.")
    b = ("Bins along the lake path at Semsvannet", f"{story}, and litter piles up.")
    with_penalty = finder.score(*a, *b)
    finder.channels = replace(finder.channels, rarest=0.0)
    assert finder.score(*a, *b) == with_penalty
