"""One test per failure kind of the duplicate detector on civic text (issue: paraphrase,
morphology in the wrong language, a long description hiding a matching title, boilerplate),
with made-up Norwegian and English examples."""

from __future__ import annotations

import pytest

from bot.dedup import DuplicateFinder
from bot.dedup.normalize import detect_language, tokenize, words

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
