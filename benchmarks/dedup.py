"""Benchmark the duplicate detector on a synthetic idea base, against a naive rapidfuzz scan.

    .venv/bin/python benchmarks/dedup.py                # 100,000 ideas, 1,000 queries
    .venv/bin/python benchmarks/dedup.py --n 10000      # smaller run

Ideas are generated from a vocabulary of real Norwegian (bokmål, some nynorsk) and English words
on municipal topics, with Zipf-like word frequencies so that some words are common and most are
rare — as in a real idea base. For `--queries` of the ideas a citizen's near-duplicate is
planted: the title and description paraphrased (words reordered, dropped and added, synonyms,
typos). The query must find its original among the top 3 (`recall@3`).

Printed in one run: build time, peak RSS (resource.getrusage), similar() p50/p99 and recall@3,
and for the *same* queries the naive scan `rapidfuzz.process.extract(query, all_texts,
scorer=fuzz.token_set_ratio, limit=3)`: its recall@3 over every query, and its p50 over the
first `--baseline-timed` of them. A scan of 100,000 texts takes a few hundred ms, so the recall
is computed with `process.cdist` (the same scorer and scores, both cores) and the timed queries
check that `extract` ranks exactly as that does. The index is built as `kominn run` builds it
at start (`DuplicateFinder.add_many`: postings filled at once). Targets on a 2-core machine:
≥ 150× faster than the naive scan (p50), p99 ≤ 4 × p50, build ≤ 15 s, peak RSS ≤ 250 MB,
recall not below the baseline's. Timings belong here, never in tests.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.dedup.detector import DuplicateFinder  # noqa: E402


def _words(text: str) -> list[str]:
    """A word list written as a whitespace-separated block."""
    return text.split()


PLACES = _words(
    """
    Asker Vollen Heggedal Slemmestad Nesbru Billingstad Hvalstad Borgen Drengsrud Holmen Gullhella
    Røyken Hurum Tofte Sætre Filtvet Spikkestad Bødalen Nærsnes Blakstad Føyka Semsvannet Vettre
    Høvik Sandvika Jar Bekkestua Stabekk Fornebu Lysaker Kolsås Rykkinn Dikemark Landøya Brønnøya
    Håkavik Konglungen Vardåsen Skaugum Solberg Torstad Leikvoll Hofstad Kjaglidalen Bondivann
    """
)

NOUNS_NB = _words(
    """
    vei veien veier sykkel sykkelen sykler sykkelvei sykkelveien sykkelsti sykkelparkering
    sykkelstativ buss bussen busser busslomme bussholdeplass busskur kollektivtrafikk tog toget
    stasjon stasjonen skole skolen skoler skolevei skoleveien skolegård barnehage barnehagen
    lekeplass lekeplassen lekeplasser benk benken benker lys lyset belysning gatelys lyktestolpe
    park parken grøntområde turvei turveien tursti turstien turløype sti stien skog skogen vann
    vannet badeplass strand stranda brygge båthavn fortau fortauet gangvei gangfelt
    fotgjengerovergang kryss krysset rundkjøring fartshump fartshumper fartsgrense trafikk
    parkering parkeringsplass ladestasjon elbil bil biler søppel søppelkasse søppeldunk gjenvinning
    avfall kompost hundepark hundeluftegård hund hunder bibliotek biblioteket svømmehall
    idrettshall fotballbane kunstgress skatepark ballbinge skøytebane lysløype skiløype akebakke
    sandkasse huske sklie klatrestativ toalett drikkefontene vannpost kafé møteplass torg torget
    sentrum kulturhus konsert festival kino museum ungdomsklubb ungdom eldre pensjonister barn
    familier innbyggere frivillige nabolag bydel boliger omsorgsbolig sykehjem helsestasjon
    legevakt tannlege kommune budsjett eiendomsskatt byggesak reguleringsplan tomt trær blomster
    bier hage parsellhage brøyting strøing hull asfalt vedlikehold flom overvann vannledning
    drikkevann bredbånd app skjema søknad venteliste
    """
)

NOUNS_EN = _words(
    """
    bench benches streetlight streetlights playground playgrounds bicycle bike bus buses school
    library park path trail lake beach pier harbour sidewalk crossing roundabout parking charger
    garbage bin recycling compost dog toilet fountain square concert youth elderly children
    families neighbourhood housing budget tax tree trees flower garden snow ice road roads traffic
    speed bump station train ferry
    """
)

ADJECTIVES_NB = _words(
    """
    flere bedre trygg tryggere ny nye gratis mørk mørke farlig glatt stengt åpen grønn grønne ren
    rene lang lengre bred smal gammel gamle billig billigere universell tilgjengelig lokal stille
    ødelagt kald varm
    """
)

ADJECTIVES_EN = _words(
    """
    more better safe safer new free dark dangerous slippery closed open green
    clean wide old cheap accessible local quiet broken
    """
)

VERBS_NB = _words(
    """
    trenger ønsker mangler bygge lage sette fikse reparere utvide flytte åpne rydde male plante
    brøyte måke strø asfaltere merke skilte forlenge oppgradere fornye savner foreslår
    """
)

VERBS_EN = _words(
    """
    need want build fix repair extend move open clean paint plant upgrade
    """
)

GROUPS_NB = _words(
    """
    barn eldre ungdom familier pensjonister alle syklister bilister hundeeiere
    """
)
GROUPS_EN = _words(
    """
    children elderly youth families everyone cyclists drivers residents
    """
)

TEMPLATES = {
    "nb": (
        (
            "{Adj} {noun} {prep} {place}",
            "{Verb} {noun} og {noun2} {prep} {place}",
            "{Noun} for {group} {prep} {place}",
            "{Adj} {noun} og {adj} {noun2}",
        ),
        (
            "{Pron} {verb} {adj} {noun} {prep} {place}.",
            "Det er {adj} {noun} {prep} {noun2}.",
            "{Noun} {prep} {place} er {adj} for {group}.",
            "Kan kommunen {verb} {noun} og {noun2}?",
            "Vi {verb} {noun} for {group}.",
            "{Noun2} {prep} {place} er {adj} om vinteren.",
        ),
        ("i", "på", "ved", "langs", "rundt", "til"),
        ("Vi", "Jeg", "Naboene", "Barna", "Folk"),
    ),
    "en": (
        (
            "{Adj} {noun} {prep} {place}",
            "{Verb} the {noun} and {noun2} {prep} {place}",
            "{Noun} for {group} {prep} {place}",
            "{Adj} {noun} and {adj} {noun2}",
        ),
        (
            "{Pron} {verb} a {adj} {noun} {prep} {place}.",
            "The {noun} {prep} {noun2} is {adj}.",
            "{Noun} {prep} {place} is {adj} for {group}.",
            "Can the council {verb} the {noun}?",
            "We {verb} {noun} for {group}.",
            "The {noun2} {prep} {place} is {adj} in winter.",
        ),
        ("in", "at", "near", "along", "around", "to"),
        ("We", "I", "The neighbours", "The children", "People"),
    ),
}

VOCABULARY = {
    "nb": (NOUNS_NB, ADJECTIVES_NB, VERBS_NB, GROUPS_NB),
    "en": (NOUNS_EN, ADJECTIVES_EN, VERBS_EN, GROUPS_EN),
}

# What a second citizen might write instead: dialect forms, synonyms, other inflections.
# No replacement is itself a topic noun of the generator, or the "paraphrase" would be about
# something else.
SYNONYMS = {
    "vei": "veg",
    "veien": "vegen",
    "veier": "vegar",
    "benk": "sittebenk",
    "benker": "sittebenker",
    "lys": "lykter",
    "lyset": "lyktene",
    "gatelys": "gatelykter",
    "flere": "fleire",
    "bedre": "betre",
    "sykkelvei": "sykkelveg",
    "skole": "skule",
    "skolen": "skulen",
    "trygg": "sikker",
    "tryggere": "sikrere",
    "søppelkasse": "avfallsbeholder",
    "søppeldunk": "avfallsdunk",
    "fortau": "gangbane",
    "parkering": "parkeringen",
    "lekeplass": "leikeplass",
    "trenger": "behøver",
    "ønsker": "vil ha",
    "mangler": "savner",
    "lage": "anlegge",
    "fikse": "reparere",
    "gammel": "eldgammel",
    "bench": "seat",
    "streetlight": "lamp",
    "need": "require",
    "fix": "repair",
    "dangerous": "unsafe",
    "bike": "cycle",
}
assert not set(SYNONYMS.values()) & set(NOUNS_NB + NOUNS_EN), "a synonym is a topic noun"


@dataclass(frozen=True)
class Idea:
    ref: str
    title: str
    description: str

    @property
    def text(self) -> str:
        return f"{self.title} {self.description}"


def zipf_weights(n: int, s: float = 1.0) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


class Generator:
    """Draws ideas: a topic (2–3 nouns) and a place, put into sentence templates.

    85 % of the ideas are Norwegian, the rest English; nouns follow a Zipf-like distribution
    (which nouns are common is shuffled by the seed), places are uniform.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.nouns: dict[str, tuple[list[str], list[float]]] = {}
        for language, (nouns, *_rest) in VOCABULARY.items():
            shuffled = nouns[:]
            self.rng.shuffle(shuffled)
            self.nouns[language] = (shuffled, zipf_weights(len(shuffled), 0.9))

    def _nouns(self, language: str, k: int) -> list[str]:
        nouns, weights = self.nouns[language]
        picked = list(dict.fromkeys(self.rng.choices(nouns, weights, k=k)))
        while len(picked) < k:
            picked.append(self.rng.choice(nouns))
        return picked

    def _fill(self, template: str, language: str, topic: list[str], place: str) -> str:
        rng = self.rng
        _, adjectives, verbs, groups = VOCABULARY[language]
        _, _, preps, pronouns = TEMPLATES[language]
        noun, noun2 = rng.sample(topic, 2) if rng.random() < 0.7 else (topic[0], topic[-1])
        values = {
            "adj": rng.choice(adjectives),
            "noun": noun,
            "noun2": noun2 if rng.random() < 0.8 else self._nouns(language, 1)[0],
            "verb": rng.choice(verbs),
            "prep": rng.choice(preps),
            "place": place,
            "group": rng.choice(groups),
            "pron": rng.choice(pronouns),
        }
        values.update({k.capitalize(): v.capitalize() for k, v in list(values.items())})
        return template.format(**values)

    def idea(self, number: int) -> Idea:
        rng = self.rng
        language = "nb" if rng.random() < 0.85 else "en"
        titles, sentences, _, _ = TEMPLATES[language]
        topic = self._nouns(language, rng.randint(2, 3))
        place = rng.choice(PLACES)
        title = self._fill(rng.choice(titles), language, topic, place)
        chosen = rng.sample(sentences, rng.randint(2, 4))
        body = [self._fill(t, language, topic, place) for t in chosen]
        return Idea(f"KI-{number}", title, " ".join(body))


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double", "replace"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeiouøæå") + word[i + 1 :]


def paraphrase(text: str, rng: random.Random, extra: list[str]) -> str:
    """Reorder, drop and add words, swap in synonyms, and make typos."""
    words = text.replace(".", "").split()
    out = []
    for word in words:
        roll = rng.random()
        if roll < 0.15 and len(words) > 3:
            continue  # dropped
        lower = word.lower()
        if lower in SYNONYMS and roll < 0.55:
            word = SYNONYMS[lower]
        elif roll > 0.88:
            word = typo(word, rng)
        out.append(word)
    for _ in range(rng.randint(0, 2)):
        out.insert(rng.randrange(len(out) + 1), rng.choice(extra))
    if len(out) > 3:  # move a chunk: citizens say things in another order
        cut = rng.randrange(1, len(out) - 1)
        out = out[cut:] + out[:cut] if rng.random() < 0.5 else out
    return " ".join(out)


def planted_query(idea: Idea, rng: random.Random) -> tuple[str, str]:
    extra = ADJECTIVES_NB + VERBS_NB + ["også", "veldig", "nå", "gjerne", "her"]
    return paraphrase(idea.title, rng, extra), paraphrase(idea.description, rng, extra)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def baseline_top3(queries: list[str], texts: list[str]) -> list[list[int]]:
    """The naive scan's top 3 (indexes into `texts`) per query: best score first, ties by index,
    as `process.extract` returns them."""
    tops: list[list[int]] = []
    for start in range(0, len(queries), 50):
        scores = process.cdist(
            queries[start : start + 50], texts, scorer=fuzz.token_set_ratio, workers=-1
        )
        for row in scores:
            tops.append(np.argsort(-row, kind="stable")[:3].tolist())
    return tops


def run(n: int, queries: int, baseline_timed: int, seed: int) -> None:
    gen = Generator(seed)
    ideas = [gen.idea(i) for i in range(1, n + 1)]
    rng = random.Random(seed + 1)
    originals = rng.sample(ideas, min(queries, n))
    planted = [(idea.ref, *planted_query(idea, rng)) for idea in originals]
    rss_before = rss_mb()

    finder = DuplicateFinder(dedup_threshold=0.0, triage_threshold=0.0)
    start = time.perf_counter()
    finder.add_many((idea.ref, idea.title, idea.description) for idea in ideas)
    build = time.perf_counter() - start
    rss_after = rss_mb()

    start = time.perf_counter()
    finder.similar("oppvarming", "")  # the first query refreshes the norms (once per start)
    first = time.perf_counter() - start
    latencies, hits = [], 0
    for ref, title, description in planted:
        t0 = time.perf_counter()
        matches = finder.similar(title, description, limit=3)
        latencies.append((time.perf_counter() - t0) * 1000)
        hits += any(m.ref == ref for m in matches)

    texts = [idea.text for idea in ideas]
    refs = [idea.ref for idea in ideas]
    query_texts = [f"{title} {description}" for _, title, description in planted]
    tops = baseline_top3(query_texts, texts)
    base_hits = sum(
        any(refs[i] == ref for i in top) for (ref, _, _), top in zip(planted, tops, strict=True)
    )
    base_latencies, agree = [], 0
    for query, top in list(zip(query_texts, tops, strict=True))[:baseline_timed]:
        t0 = time.perf_counter()
        found = process.extract(query, texts, scorer=fuzz.token_set_ratio, limit=3)
        base_latencies.append((time.perf_counter() - t0) * 1000)
        agree += [index for _, _, index in found] == top

    print(f"ideas                   {n:,}")
    print(f"build                   {build:.2f} s  ({n / build:,.0f} ideas/s)")
    print(f"first query             {first * 1000:.0f} ms  (refreshes the ranking norms)")
    print(f"peak RSS                {rss_after:.0f} MB  (before indexing {rss_before:.0f} MB)")
    print(f"similar() queries       {len(planted):,}")
    print(
        f"similar() p50 / p99     {statistics.median(latencies):.2f} / "
        f"{percentile(latencies, 0.99):.2f} ms"
    )
    print(f"similar() recall@3      {hits / len(planted):.3f}  ({len(planted) - hits} missed)")
    print(
        f"baseline recall@3       {base_hits / len(planted):.3f}  "
        f"({len(planted) - base_hits} missed; naive token_set_ratio scan, same queries)"
    )
    print(
        f"baseline p50            {statistics.median(base_latencies):.1f} ms  "
        f"(process.extract, first {len(base_latencies)} queries; same top 3 as the "
        f"recall scan for {agree})"
    )
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    print(
        f"targets                 {statistics.median(base_latencies) / p50:.0f}× faster than "
        f"the scan (≥ 150), p99/p50 {p99 / p50:.1f} (≤ 4), build {build:.1f} s (≤ 15), "
        f"RSS {rss_after:.0f} MB (≤ 250), recall {hits / len(planted):.3f} vs "
        f"{base_hits / len(planted):.3f} (≥)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="ideas in the base")
    parser.add_argument("--queries", type=int, default=1_000, help="planted near-duplicates")
    parser.add_argument(
        "--baseline-timed", type=int, default=20, help="queries the baseline is timed on"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    run(args.n, args.queries, args.baseline_timed, args.seed)


if __name__ == "__main__":
    main()
