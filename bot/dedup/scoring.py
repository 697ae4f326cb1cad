"""Scoring two idea texts for the duplicate detector (`bot.dedup.detector`, whose docstring
explains the design): text analysis, related words (spelling variants, compounds), the
weighted cosine, the combination of the whole-text and title channels, and the discounts for
short texts and for titles whose rarest words the other text lacks (`_mix`)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

from rapidfuzz import fuzz

from bot.dedup.chargrams import char_grams
from bot.dedup.normalize import detect_language, stems, words

TITLE_WEIGHT = 1.25  # a title word counts this many description words
TITLE_CHANNEL = 0.35  # share of the title channel (each title against the other whole text)
SHORT_TEXT_WORDS = 16  # texts with fewer distinct content words than this give less evidence
SHORT_TEXT_PENALTY = 30.0  # points taken off (scaled, see _combine) per e-fold shorter
SPELLING_MIN_RATIO = 80.0  # rapidfuzz ratio for two different words to count as one
SPELLING_MIN_LEN = 4  # shorter words are too ambiguous to match by spelling ("vei" ~ "vej")
SPELLING_AFFIX = 3  # spelling variants share their first or last this many letters
COMPOUND_MIN_HEAD = 3  # "lys" in "gatelys"
COMPOUND_MIN_MODIFIER = 4  # "buss" in "bussavgang"
COMPOUND_MIN_REST = 3  # the rest of the compound must be a word too, not an ending
COMPOUND_HEAD_SIMILARITY = 0.5
COMPOUND_MODIFIER_SIMILARITY = 0.4
SURFACE_WEIGHT = 0.3  # share of the trigram Jaccard index in the score (see module docstring)
RAREST_WORD_PENALTY = 10.0  # points off (scaled, see _mix) when titles' rarest words are missing



@dataclass(frozen=True)
class Channels:
    """The weights between the score's channels: the trigram Jaccard index's share of the
    whole-text similarity and the title channel's share of the score (both 0–1), and the
    points the short-text discount and the rarest-word penalty take off at most per unit
    (0–100, see `_mix`). Defaults chosen on the shared pairs; `kominn dedup calibrate` may fit
    others to a municipality."""

    surface: float = SURFACE_WEIGHT
    title: float = TITLE_CHANNEL
    short: float = SHORT_TEXT_PENALTY
    rarest: float = RAREST_WORD_PENALTY

    def __post_init__(self) -> None:
        for name, top in (("surface", 1.0), ("title", 1.0), ("short", 100.0),
                          ("rarest", 100.0)):
            value = getattr(self, name)
            if math.isnan(value) or not 0.0 <= value <= top:
                raise ValueError(
                    f"channel weight {name} must be between 0 and {top:g}, got {value!r}")


DEFAULT_CHANNELS = Channels()

Weights = dict[str, float]  # word stem -> weight
Parts = tuple[float, float, float, float, float]  # see _parts
Neighbours = dict[str, list[tuple[str, float]]]  # word -> [(related word, similarity 0–1)]


# --------------------------------------------------------------------------- text analysis


@dataclass(frozen=True)
class _Text:
    """What the detector keeps of a title and description: stem frequencies (the title's
    stems first, `titled` of them) and trigrams."""

    tf: Weights
    grams: frozenset[str]
    titled: int = 0


def _analyse(title: str, description: str, language: str | None = None) -> _Text:
    title_words, description_words = words(title), words(description)
    language = detect_language(title_words + description_words, language)
    titled = len(set(stems(title_words, language)))
    return _Text(
        _term_frequencies(title_words, description_words, language),
        char_grams(title_words + description_words),
        titled,
    )


def _term_frequencies(
    title_words: list[str], description_words: list[str], language: str
) -> Weights:
    """Sublinear term frequency per stem, a title occurrence counting TITLE_WEIGHT times.

    Sublinear (1 + ln n), so a word repeated in a long description does not drown the rest.
    """
    weights: Weights = {}
    for tokens, factor in ((title_words, TITLE_WEIGHT), (description_words, 1.0)):
        for token, count in Counter(stems(tokens, language)).items():
            weights[token] = weights.get(token, 0.0) + factor * (1.0 + math.log(count))
    return weights


def _related_eligible(word: str) -> bool:
    """Only words take part in fuzzy pairing: numbers ("31", "2025") must match exactly."""
    return len(word) >= COMPOUND_MIN_HEAD and word.isalpha()


def _spelling_similarity(a: str, b: str) -> float:
    """Similarity 0–1 of two spellings of one word (typo, dialect form); 0 if they are not."""
    if min(len(a), len(b)) < SPELLING_MIN_LEN:
        return 0.0
    if a[:SPELLING_AFFIX] != b[:SPELLING_AFFIX] and a[-SPELLING_AFFIX:] != b[-SPELLING_AFFIX:]:
        return 0.0
    return fuzz.ratio(a, b, score_cutoff=SPELLING_MIN_RATIO) / 100.0


def _compound_similarity(a: str, b: str) -> float:
    """Partial credit when one word is the head ("lys" in "gatelys") or modifier of the other."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(long_) - len(short) < COMPOUND_MIN_REST:
        return 0.0
    if len(short) >= COMPOUND_MIN_HEAD and long_.endswith(short):
        return COMPOUND_HEAD_SIMILARITY
    if len(short) >= COMPOUND_MIN_MODIFIER and long_.startswith(short):
        return COMPOUND_MODIFIER_SIMILARITY
    return 0.0


def _related(a: str, b: str) -> float:
    """Similarity 0–1 of two different eligible words when they count as related, else 0."""
    return _compound_similarity(a, b) or _spelling_similarity(a, b)


def _pair_neighbours(a: Iterable[str], b: Iterable[str]) -> Neighbours:
    """Related words between two texts (the same relation the index finds through buckets)."""
    b_words = [w for w in b if _related_eligible(w)]
    out: Neighbours = {}
    for word in a:
        if _related_eligible(word):
            found = [(o, s) for o in b_words if o != word and (s := _related(word, o)) > 0]
            if found:
                out[word] = found
    return out


@dataclass(frozen=True)
class _Vector:
    """A text as TF-IDF weights per stem, with the IDF each stem was weighted with (and the
    squared norm, computed once: a query meets up to CANDIDATE_POOL candidates)."""

    weights: Weights
    idf: Weights
    norm2: float = -1.0
    # the title vectors made of this one (`_title_vector`), by title length: a query meets up
    # to CANDIDATE_POOL candidates, and an indexed idea many queries
    titles: dict[int, _Vector] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.norm2 < 0:
            object.__setattr__(self, "norm2", sum(w * w for w in self.weights.values()))


def _cosine(a: _Vector, b: _Vector, neighbours: Neighbours) -> float:
    """Cosine of two weighted vectors in which unmatched words may pair with a related word.

    Each unmatched word pairs at most once (greedy, most similar first). A pair counts with
    its similarity and with the IDF of the *more common* of its two words: a misspelt or
    compound word says no more than the word it stands for. So the result stays in 0–1.
    """
    wa, wb = a.weights, b.weights
    norm = math.sqrt(a.norm2 * b.norm2)
    if norm == 0.0:
        return 0.0
    dot = sum(w * wb[t] for t, w in wa.items() if t in wb) + _related_dot(a, b, neighbours)
    return min(1.0, dot / norm)


def _related_dot(a: _Vector, b: _Vector, neighbours: Neighbours) -> float:
    wa, wb = a.weights, b.weights
    pairs = [
        (sim, word, other)
        for word in wa
        if word not in wb
        for other, sim in neighbours.get(word, ())
        if other in wb and other not in wa
    ]
    if not pairs:
        return 0.0
    pairs.sort(reverse=True)
    used_a: set[str] = set()
    used_b: set[str] = set()
    dot = 0.0
    for sim, word, other in pairs:
        if word not in used_a and other not in used_b:
            used_a.add(word)
            used_b.add(other)
            idf_a, idf_b = a.idf[word], b.idf[other]
            shared = min(idf_a, idf_b)
            dot += sim * wa[word] * wb[other] * (shared / idf_a) * (shared / idf_b)
    return dot


def _similarity(cosine: float, surface: float, weight: float = SURFACE_WEIGHT) -> float:
    """Word cosine and trigram Jaccard index combined (0–1). Texts without a related word are
    not similar, however alike their letters: shared phrasing alone is no shared idea."""
    if cosine <= 0.0:
        return 0.0
    return (1.0 - weight) * cosine + weight * surface


def _to_score(similarity: float) -> float:
    """Map a similarity to the 0–100 score (monotone, so a threshold keeps its meaning)."""
    return 100.0 * math.sqrt(max(0.0, similarity))


def _title_vector(vector: _Vector, titled: int) -> _Vector:
    """The title's stems of a text's vector (they come first), each at weight 1 × its IDF.
    Made once per vector (remembered on it)."""
    title = vector.titles.get(titled)
    if title is None:
        idf = vector.idf
        weights = {w: idf[w] for w in itertools.islice(vector.weights, titled)}
        title = vector.titles[titled] = _Vector(weights, idf)
    return title


def _combine(a: _Vector, b: _Vector, titled_a: int, titled_b: int,
             neighbours: Neighbours, surface: float,
             channels: Channels = DEFAULT_CHANNELS) -> float:
    """The score 0–100 of two texts (see `_parts` and `_mix`)."""
    return _mix(_parts(a, b, titled_a, titled_b, neighbours, surface), channels)


def _rarest_title_word(vector: _Vector, titled: int) -> str | None:
    """The title's stem with the highest IDF (the first on a tie), None without a title."""
    idf = vector.idf
    return max(islice(vector.weights, titled), key=idf.__getitem__, default=None)


_reversed: list[tuple[Neighbours, dict[str, list[str]]]] = []  # the last query's, see below


def _reverse(neighbours: Neighbours) -> dict[str, list[str]]:
    """Related word → the words it is related to. A query meets up to CANDIDATE_POOL
    candidates with one `neighbours`, so the last one reversed is kept (with the dict itself,
    so that its identity cannot be reused; a race between threads only recomputes)."""
    last = _reversed[-1] if _reversed else None
    if last is not None and last[0] is neighbours:
        return last[1]
    reverse: dict[str, list[str]] = {}
    for word, found in neighbours.items():
        for other, _ in found:
            reverse.setdefault(other, []).append(word)
    _reversed[:] = [(neighbours, reverse)]
    return reverse


def _object_mismatch(a: _Vector, b: _Vector, titled_a: int, titled_b: int,
                     neighbours: Neighbours) -> float:
    """0, 0.5 or 1: the share of the two titles whose rarest word (their object, mostly:
    "benk" in "Benk ved Hvalstad stasjon") neither the other text nor a word related to it
    holds (`neighbours`: a's words → related words; as in the cosine, only words without an
    exact partner pair with a related word). Two ideas about one place share the
    place's words; a different object is what tells them apart."""
    missing = 0
    rarest_a = _rarest_title_word(a, titled_a)
    if rarest_a is not None and rarest_a not in b.weights and not any(
            o in b.weights for o, _ in neighbours.get(rarest_a, ())):
        missing += 1
    rarest_b = _rarest_title_word(b, titled_b)
    if rarest_b is not None and rarest_b not in a.weights and not any(
            w not in b.weights for w in _reverse(neighbours).get(rarest_b, ())):
        missing += 1
    return missing / 2.0


def _parts(a: _Vector, b: _Vector, titled_a: int, titled_b: int,
           neighbours: Neighbours, surface: float) -> Parts:
    """What the score is made of, before the channels are weighed: (word cosine, trigram
    Jaccard index, title channel cosine, shortness, object mismatch). Calibration weighs them
    many ways."""
    cosine = _cosine(a, b, neighbours)
    if cosine <= 0.0:
        return 0.0, surface, 0.0, 0.0, 0.0
    title = 0.0
    if titled_a:
        title = _cosine(_title_vector(a, titled_a), b, neighbours)
    if titled_b:
        title = max(title, _cosine(a, _title_vector(b, titled_b), neighbours))
    length = math.sqrt(max(1, len(a.weights)) * max(1, len(b.weights)))
    shortness = max(0.0, math.log(SHORT_TEXT_WORDS / length))
    # the mismatch only counts for short texts (see _mix): not computed for long ones
    mismatch = _object_mismatch(a, b, titled_a, titled_b, neighbours) if shortness else 0.0
    return cosine, surface, title, shortness, mismatch


def _mix(parts: Parts, channels: Channels) -> float:
    """The score 0–100: the whole-text channel (word cosine and trigram Jaccard) and the title
    channel (each title against the other whole text, the better of the two, so a long
    description cannot hide a matching title; it only ever lifts the score), less a discount
    for short texts.

    Two short texts about one place share their few rare words by chance more often than two
    long ones, so texts with fewer than SHORT_TEXT_WORDS distinct content words (geometric mean
    of the two) lose up to SHORT_TEXT_PENALTY points per e-fold, scaled by how far the score is
    from 100 (identical texts still score 100).

    The same chance sharing has a tell: two short ideas about one place in nearly the same
    words ("Benk ved Hvalstad stasjon" / "Sykkelparkering ved Hvalstad stasjon") differ in the
    word that names the thing asked for, which is mostly the title's rarest. So short texts
    also lose up to RAREST_WORD_PENALTY points times the share of the two titles whose rarest
    word the other text does not hold (nor a spelling variant or compound of it; see
    `_object_mismatch`), scaled like the discount. Long texts (petitions) name their object in
    more than one word, and a title's rarest word there is as often incidental ("Stop the
    rising costs of university fees"), so the penalty fades out with the discount: at most
    one e-fold of shortness counts."""
    cosine, surface, title, shortness, mismatch = parts
    if cosine <= 0.0:
        return 0.0
    whole = _to_score(_similarity(cosine, surface, channels.surface))
    share = channels.title
    score = (1.0 - share) * whole + share * max(whole, _to_score(title))
    score -= channels.short * shortness * (1.0 - score / 100.0)
    score -= channels.rarest * mismatch * min(1.0, shortness) * (1.0 - score / 100.0)
    return round(min(100.0, max(0.0, score)), 2)
