"""Duplicate detection for ideas: inverted indexes with IDF-weighted cosine and trigram scoring.

Why this design
---------------
Whether two ideas are the same depends far more on the *rare* words they share ("Semsvannet",
"lekeplass") than on the common ones ("kommune", "bedre"), so every score is a cosine of
TF-IDF vectors over normalised word stems (`bot.dedup.normalize`, in each text's language), with
the IDF raised to IDF_POWER (2) to push that further: words in many ideas — a municipality's
boilerplate, "kommunen", "foreslår", "the government should" — weigh next to nothing, and the
weights follow the idea base as ideas arrive. A title word counts TITLE_WEIGHT times a
description word: the title is the citizen's own summary.

Typos, spelling variants and compounds still meet: a word without an exact partner may pair
with a similar word of the other text — a spelling variant (rapidfuzz ratio ≥ 80 and
the same first or last three letters: "benkker"/"benker", "turveg"/"turvei") or a compound
and its head or modifier ("gatelys"/"lys", "bussavgang"/"buss", at a lower weight). Each word
pairs at most once and its product is scaled by the similarity. A word no idea has yet gets
the highest IDF — unless it is a misspelling of an indexed word, which is as informative as
the word it misspells.

Words are not all a text says. Thumbs on a phone make typos no spelling rule can pair ("holl"
for "hull", "Ryken" for "Røyken"), and a resubmitted or forwarded idea copies whole phrases,
stop words and all. So the score also counts *surface* similarity: the Jaccard index of the
two texts' character trigrams (`bot.dedup.chargrams`), with weight SURFACE_WEIGHT (0.3):

    similarity = 0.7 · word cosine + 0.3 · trigram Jaccard     (0 if the word cosine is 0)

Texts without a related word score 0 however alike their letters are — shared phrasing alone
is no shared idea. Both parts lie in 0–1 whatever the length of the texts or the size of the
idea base; the whole-text score is `100 * sqrt(similarity)`, which spreads out the low values
where the decisions are made.

A long description can hide a matching title, so a *title channel* scores each title against
the other whole text (the better of the two) and the score is (see `_combine`)

    score = 0.65 · whole text + 0.35 · max(whole text, title channel) − short-text discount

The discount: two short texts about one place share their few rare words by chance more often
than long ones, so when the two texts have fewer than SHORT_TEXT_WORDS distinct content words
(geometric mean) the score loses SHORT_TEXT_PENALTY points per e-fold, scaled by its distance
from 100. Identical texts score 100. The two shares were chosen together: a larger trigram
weight ranks the benchmark's planted duplicates (typos, copied phrasing) better, a larger title
share holds the petition pairs (paraphrases) that it would lose; a cue-based contrast for
opposite asks ("behold" / "legg ned") and boilerplate learned as word bigrams were measured
and gained nothing (README).

`similar()` never scans the idea base. Query words are looked up in the inverted index (word →
ideas), rarest first, until POSTINGS_BUDGET postings are taken; words found in more than
COMMON_FRACTION of all ideas never are — they would pull in a large part of the base while
telling little. The WORD_POOL ideas with the best approximate cosine (numpy) join the CHAR_POOL
sharing the most rare trigrams, those at word edges and across words first (the phrasing the
word index cannot see: the ideas a typo or a synonym hides from it); of those, the
CANDIDATE_POOL best by approximate score (approximate cosine and exact trigram Jaccard, as in
the score, the Jaccard indexes computed at once) are scored exactly. The approximate scores are
added up postings list by postings list into 32-bit arrays kept between queries, so a query
allocates no array the size of the base (fresh ones cost more in page faults than the sums),
and a query word's related indexed words are remembered until the vocabulary changes.

Document frequencies change with every add/remove, and the exact score always uses the current
ones; only the approximate norms used for ranking are refreshed lazily (when the base has grown
or shrunk by half), so add/remove stay cheap. `add_many` (the start-up build) analyses ideas in
chunks and fills their postings without per-idea norms, then computes every norm once,
vectorised (a batch of words at a time).

The order of the matches — score and the words shared — is `bot.dedup.ranking`'s.

The thresholds (KOMINN_DEDUP_THRESHOLD: shown to citizens; KOMINN_TRIAGE_THRESHOLD, lower:
queued for the moderators) were chosen with `kominn dedup eval`; the sweeps, the comparison
with other scorers and the speed and recall at 100,000 ideas (benchmarks/dedup.py) are in the
README's "Duplicate detection", their one home.
"""

from __future__ import annotations

import math
import operator
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from bot.config import DEFAULT_DEDUP_THRESHOLD, DEFAULT_TRIAGE_THRESHOLD, load_settings
from bot.dedup.chargrams import CharGramIndex, jaccard, position, top_slots
from bot.dedup.ranking import best_first, word_overlap
from bot.dedup.scoring import (
    COMPOUND_MIN_HEAD,
    COMPOUND_MIN_REST,
    SPELLING_AFFIX,
    SPELLING_MIN_LEN,
    SPELLING_MIN_RATIO,
    Channels,
    Neighbours,
    Weights,
    _analyse,
    _combine,
    _mix,
    _pair_neighbours,
    _parts,
    _related,
    _related_eligible,
    _spelling_similarity,
    _Text,
    _Vector,
)

__all__ = [
    "Channels",
    "DEFAULT_DEDUP_THRESHOLD",
    "DEFAULT_TRIAGE_THRESHOLD",
    "DuplicateFinder",
    "Match",
]

IDF_POWER = 2.0  # >1 favours rare words more than plain TF-IDF does
COMMON_FRACTION = 0.25  # words in more ideas than this are skipped for candidate generation
COMMON_MIN_DF = 50  # …but never below this many ideas (small bases keep every word)
POSTINGS_BUDGET = 100_000  # postings scanned per query at most
WORD_POOL = 30  # candidates taken by approximate word cosine
CHAR_POOL = 30  # … and by shared rare trigrams
CANDIDATE_POOL = 20  # of both, the best by approximate score are scored exactly
NEIGHBOUR_MEMO = 50_000  # query words whose related words are remembered at most
BULK_CHUNK = 500  # ideas analysed ahead of inserting (their trigram sets are large)
NORM_REFRESH_FACTOR = 1.5  # refresh approximate norms when the base grew/shrank this much
NORM_BATCH = 1 << 18  # postings per batch when the norms are refreshed


@dataclass(frozen=True)
class Match:
    """One similar idea: its public reference and a similarity score 0–100."""

    ref: str
    score: float




# --------------------------------------------------------------------------- configuration


def _checked(name: str, value: float) -> float:
    if math.isnan(value) or not 0.0 <= value <= 100.0:
        raise ValueError(f"{name} must be a number between 0 and 100, got {value!r}")
    return float(value)


def _compact(ids: array, vocabulary: int) -> array:
    """A slot's word ids in 16 bits while the vocabulary fits (half the memory), else 32."""
    return array("H", ids) if vocabulary <= 1 << 16 else ids


# --------------------------------------------------------------------------- the index


class DuplicateFinder:
    """An index of ideas that finds the ones most similar to a new title and description.

    A threshold not given is the configured one (`bot.config.Settings`, the one reader of
    KOMINN_DEDUP_THRESHOLD and KOMINN_TRIAGE_THRESHOLD), so `DuplicateFinder()` embedded in a
    script scores like the running bot.
    Thread-safe: every public method takes one lock (adapters call it from worker threads).
    """

    def __init__(
        self, dedup_threshold: float | None = None, triage_threshold: float | None = None
    ) -> None:
        if dedup_threshold is None or triage_threshold is None:
            # The configured thresholds (Settings reads the environment and `.env`; a bad
            # value is a ConfigError naming the key), asked only when one is not given.
            configured = load_settings()
            if dedup_threshold is None:
                dedup_threshold = configured.dedup_threshold
            if triage_threshold is None:
                triage_threshold = configured.triage_threshold
        self.dedup_threshold: float = _checked("dedup_threshold", dedup_threshold)
        self.triage_threshold: float = _checked("triage_threshold", triage_threshold)
        # the weights between the channels (calibrated ones are set by bot.dedup.index)
        self.channels: Channels = Channels()
        self._lock = threading.Lock()
        # vocabulary: stem <-> id, live document frequency, postings (slots and term weights)
        self._word_id: dict[str, int] = {}
        self._words: list[str] = []
        self._df: list[int] = []
        self._post_slots: list[array] = []
        self._post_tf: list[array] = []
        # affix buckets (first / last three letters -> words), to find related words fast
        self._prefix: dict[str, list[str]] = {}
        self._suffix: dict[str, list[str]] = {}
        # ideas by slot; slots of removed ideas are reused
        self._slot_of: dict[str, int] = {}
        self._refs: list[str | None] = []
        self._doc_words: list[array] = []
        self._doc_tf: list[array] = []
        # 1 / approximate norm per slot, for candidate ranking (0: an empty slot)
        self._inverse_norms = array("f")
        # _approximate_cosines adds up its dot products here (reused; 32 bits are enough to
        # rank candidates, and half the memory traffic of 64)
        self._dots = np.zeros(0, dtype=np.float32)
        self._titled = array("H")  # how many of a slot's words (the first) are its title's
        self._free: list[int] = []
        self._chars = CharGramIndex()
        self._idf_n = -1  # number of ideas the IDF memo is for
        self._idf_memo: dict[int, float] = {}
        self._norms_size = 0  # number of ideas when the norms were last refreshed
        # Indexed ideas' TF-IDF vectors as the exact score uses them, built once per slot and
        # dropped whenever an add or remove changes the IDFs (every query scored the same
        # candidates' vectors again).
        self._vectors: dict[int, _Vector] = {}
        # word -> its indexed related words, while the vocabulary stays the same
        self._neighbour_memo: Neighbours = {}

    # ------------------------------------------------------------------ public API

    def __len__(self) -> int:
        with self._lock:
            return len(self._slot_of)

    def __contains__(self, ref: object) -> bool:
        with self._lock:
            return ref in self._slot_of

    def add(self, ref: str, title: str, description: str = "") -> None:
        """Index an idea under `ref`; adding a known ref replaces its text."""
        text = _analyse(title, description)
        with self._lock:
            if ref in self._slot_of:
                self._remove(ref)
            self._insert(ref, text)

    def add_many(self, ideas: Iterable[tuple[str, str, str]]) -> None:
        """Index many ideas `(ref, title, description)` at once — at start, from the database.
        Into an empty index the postings are filled in one pass (sorted with numpy, not
        appended idea by idea) and the norms computed once; otherwise like `add` each."""
        chunk: dict[str, _Text] = {}
        for ref, title, description in ideas:
            chunk[ref] = _analyse(title, description)  # outside the lock, a chunk at a time
            if len(chunk) >= BULK_CHUNK:
                self._add_chunk(chunk)
                chunk = {}
        self._add_chunk(chunk)
        with self._lock:
            self._norms_size = 0  # every norm is computed now, vectorised
            self._refresh_norms_if_stale()

    def _add_chunk(self, chunk: dict[str, _Text]) -> None:
        with self._lock:
            if any(ref in self._slot_of for ref in chunk):
                for ref in chunk:
                    if ref in self._slot_of:
                        self._remove(ref)
            self._bulk_insert(chunk)

    def remove(self, ref: str) -> None:
        """Forget an idea (e.g. merged or declined); an unknown ref is ignored."""
        with self._lock:
            if ref in self._slot_of:
                self._remove(ref)

    def similar(self, title: str, description: str = "", limit: int = 3,
                language: str | None = None) -> list[Match]:
        """The `limit` ideas most similar to the text, best first, scoring ≥ triage threshold.
        `language` ("nb", "nn", "en"), the writer's chosen language, is the prior of the
        text's language detection (a short text with no telling word is read in it)."""
        if limit <= 0 or not self._slot_of:  # nothing to find: no need to analyse the text
            return []
        text = _analyse(title, description, language)
        with self._lock:
            if not self._slot_of or not text.tf:
                return []
            return self._similar(text, limit)

    def score(self, title_a: str, description_a: str, title_b: str, description_b: str) -> float:
        """Similarity 0–100 of two ideas, weighted by the word statistics of the indexed ideas."""
        return self.scores(title_a, description_a, title_b, description_b, [self.channels])[0]

    def scores(self, title_a: str, description_a: str, title_b: str, description_b: str,
               channels: Sequence[Channels]) -> list[float]:
        """`score()` of two ideas under each of several channel weights (for calibration)."""
        text_a, text_b = _analyse(title_a, description_a), _analyse(title_b, description_b)
        with self._lock:
            a = self._weigh(text_a.tf, self._vocabulary_neighbours(self._unseen(text_a.tf)))
            b = self._weigh(text_b.tf, self._vocabulary_neighbours(self._unseen(text_b.tf)))
        neighbours = _pair_neighbours(a.weights, b.weights)
        surface = jaccard(text_a.grams, text_b.grams)
        parts = _parts(a, b, text_a.titled, text_b.titled, neighbours, surface)
        return [_mix(parts, weights) for weights in channels]

    # ------------------------------------------------------------------ weights

    def _idf(self, df: int) -> float:
        """Smoothed IDF raised to IDF_POWER; a word no idea has gets the highest weight.
        Remembered per document frequency until the number of ideas changes."""
        n = len(self._slot_of)
        if n != self._idf_n:
            self._idf_n, self._idf_memo = n, {}
        idf = self._idf_memo.get(df)
        if idf is None:
            idf = self._idf_memo[df] = (math.log((n + 1) / (df + 1)) + 1.0) ** IDF_POWER
        return idf

    def _df_of(self, word: str) -> int:
        wid = self._word_id.get(word)
        return 0 if wid is None else self._df[wid]

    def _unseen(self, tf: Weights) -> list[str]:
        return [w for w in tf if self._df_of(w) == 0]

    def _weigh(self, tf: Weights, neighbours: Neighbours) -> _Vector:
        """TF-IDF weights. A word no idea has takes the document frequency of the indexed word
        it is a misspelling of, if any: it is as informative as that word, not more."""
        weights: Weights = {}
        idfs: Weights = {}
        for word, f in tf.items():
            df = self._df_of(word)
            if df == 0:
                spellings = [
                    self._df_of(o)
                    for o, _ in neighbours.get(word, ())
                    if _spelling_similarity(word, o)
                ]
                df = max(spellings, default=0)
            idfs[word] = idf = self._idf(df)
            weights[word] = f * idf
        return _Vector(weights, idfs)

    # ------------------------------------------------------------------ mutation

    def _word(self, word: str) -> int:
        wid = self._word_id.get(word)
        if wid is None:
            wid = len(self._words)
            self._word_id[word] = wid
            self._words.append(word)
            self._df.append(0)
            self._post_slots.append(array("i"))
            self._post_tf.append(array("f"))
            if _related_eligible(word):
                self._prefix.setdefault(word[:SPELLING_AFFIX], []).append(word)
                self._suffix.setdefault(word[-SPELLING_AFFIX:], []).append(word)
        return wid

    def _new_slot(self) -> int:
        if self._free:
            return self._free.pop()
        self._refs.append(None)
        self._doc_words.append(array("i"))
        self._doc_tf.append(array("f"))
        self._inverse_norms.append(0.0)
        self._titled.append(0)
        return len(self._refs) - 1

    def _insert(self, ref: str, text: _Text) -> None:
        self._bulk_insert({ref: text})
        slot = self._slot_of[ref]
        norm2 = 0.0
        for wid, f in zip(self._doc_words[slot], self._doc_tf[slot], strict=True):
            norm2 += (f * self._idf(self._df[wid])) ** 2
        self._inverse_norms[slot] = 1.0 / math.sqrt(norm2) if norm2 else 0.0

    def _bulk_insert(self, analysed: dict[str, _Text]) -> None:
        """Fill the postings of a chunk of ideas, without the per-idea norms: `add_many`
        computes them once at the end, vectorised (measured: sorting all postings with numpy
        at once took longer and four times the memory at 20,000 ideas)."""
        self._vectors.clear()
        word, post_slots, post_tf, df = self._word, self._post_slots, self._post_tf, self._df
        memo = self._neighbour_memo
        for ref, text in analysed.items():
            slot = self._new_slot()
            self._slot_of[ref] = slot
            self._refs[slot] = ref
            self._chars.add(slot, text.grams)
            ids = _compact(array("i", (word(w) for w in text.tf)), len(self._words))
            tfs = array("f", text.tf.values())
            self._doc_words[slot], self._doc_tf[slot] = ids, tfs
            self._titled[slot] = min(text.titled, 65535)
            for wid, f in zip(ids, tfs, strict=True):
                if not df[wid]:  # a word (again) in the vocabulary
                    memo.clear()
                df[wid] += 1
                post_slots[wid].append(slot)
                post_tf[wid].append(f)

    def _remove(self, ref: str) -> None:
        self._vectors.clear()
        slot = self._slot_of.pop(ref)
        for wid in self._doc_words[slot]:
            self._df[wid] -= 1
            if not self._df[wid]:  # a word no idea has any more
                self._neighbour_memo.clear()
            postings = self._post_slots[wid]
            i = position(postings, slot)
            del postings[i]
            del self._post_tf[wid][i]
        self._refs[slot] = None
        self._chars.remove(slot)
        self._doc_words[slot] = array("i")
        self._doc_tf[slot] = array("f")
        self._inverse_norms[slot] = 0.0
        self._free.append(slot)

    # ------------------------------------------------------------------ query

    def _similar(self, text: _Text, limit: int) -> list[Match]:
        neighbours = self._vocabulary_neighbours(text.tf)
        query = self._weigh(text.tf, neighbours)
        self._refresh_norms_if_stale()
        grams = self._chars.known(text.grams)
        stems, words = " ".join(text.tf), self._words
        found: list[tuple[str, float, float]] = []
        for slot, surface in self._candidates(query, neighbours, grams, len(text.grams)):
            doc, titled = self._doc_vector(slot), self._titled[slot]
            score = _combine(query, doc, text.titled, titled, neighbours, surface, self.channels)
            if score > 0 and score >= self.triage_threshold:
                overlap = word_overlap(stems, [words[wid] for wid in self._doc_words[slot]])
                found.append((self._refs[slot] or "", score, overlap))
        return [Match(ref=ref, score=score)
                for ref, score in best_first(found, self.dedup_threshold, limit)]

    def _doc_vector(self, slot: int) -> _Vector:
        """An indexed idea's vector (and its title's) with the current IDFs, remembered until
        an add or remove changes them. Built with C-level zips: after every add (as in the
        chat, where each submission is indexed) a query rebuilds all its candidates'."""
        cached = self._vectors.get(slot)
        if cached is not None:
            return cached
        words_, df, memo, idf_of = self._words, self._df, self._idf_memo, self._idf
        idf_of(0)  # the memo is for the current number of ideas
        wids = self._doc_words[slot]
        keys = [words_[wid] for wid in wids]
        idf_list = [memo[d] if (d := df[wid]) in memo else idf_of(d) for wid in wids]
        weight_list = list(map(operator.mul, self._doc_tf[slot], idf_list))
        vector = _Vector(dict(zip(keys, weight_list, strict=True)),
                         dict(zip(keys, idf_list, strict=True)),
                         sum(map(operator.mul, weight_list, weight_list)))
        titled = self._titled[slot]
        if titled:  # as scoring._title_vector makes it: the title's stems at weight 1 × IDF
            title_idf = idf_list[:titled]
            vector.titles[titled] = _Vector(dict(zip(keys[:titled], title_idf, strict=True)),
                                            vector.idf, sum(map(operator.mul, title_idf,
                                                                title_idf)))
        self._vectors[slot] = vector
        return vector

    def _vocabulary_neighbours(self, query: Iterable[str]) -> Neighbours:
        """Indexed words related to the query's words (see `_related`), found without a scan,
        and remembered per word until the vocabulary changes (a word is new, or no idea has
        it any more, or again): queries share most of their words."""
        out: Neighbours = {}
        memo = self._neighbour_memo
        for word in query:
            found = memo.get(word)
            if found is None:
                if not _related_eligible(word):
                    continue
                found = [
                    (other, sim)
                    for other in self._related_candidates(word)
                    if (sim := _related(word, other)) > 0 and self._df_of(other) > 0
                ]
                if len(memo) >= NEIGHBOUR_MEMO:
                    memo.clear()
                memo[word] = found
            if found:
                out[word] = list(found)
        return out

    def _related_candidates(self, word: str) -> set[str]:
        """Indexed words that may be related to `word`: every related word shares its first or
        last letters with it (spelling variants), contains it, or is contained in it."""
        by_prefix = self._prefix.get(word[:SPELLING_AFFIX], [])
        by_suffix = self._suffix.get(word[-SPELLING_AFFIX:], [])
        found: set[str] = set()
        if len(word) >= SPELLING_MIN_LEN:
            for bucket in (by_prefix, by_suffix):
                hits = process.extract(
                    word, bucket, scorer=fuzz.ratio, score_cutoff=SPELLING_MIN_RATIO, limit=None
                )
                found.update(hit[0] for hit in hits)
        found.update(w for w in by_suffix if w.endswith(word))  # word is a compound's head
        found.update(w for w in by_prefix if w.startswith(word))  # … or its modifier
        for k in range(COMPOUND_MIN_HEAD, len(word) - COMPOUND_MIN_REST + 1):
            found.add(word[-k:])  # word is a compound: its possible heads and modifiers
            found.add(word[:k])
        found.discard(word)
        return {w for w in found if w in self._word_id}

    def _candidates(
        self, query: _Vector, neighbours: Neighbours, grams: set[int], gram_count: int
    ) -> list[tuple[int, float]]:
        """Slots worth an exact score, with their (exact) trigram Jaccard index: the
        CANDIDATE_POOL best by approximate score among the WORD_POOL best by approximate
        cosine and the CHAR_POOL sharing most rare trigrams."""
        cosines = self._approximate_cosines(query, neighbours)
        pool = set() if cosines is None else set(top_slots(cosines, WORD_POOL))
        pool.update(self._chars.candidates(grams, len(self._slot_of), CHAR_POOL))
        slots = sorted(pool)
        surface = self._chars.jaccards(grams, gram_count, slots)
        if len(slots) > CANDIDATE_POOL:
            weight = self.channels.surface
            approximate = weight * surface
            if cosines is not None:
                approximate += (1.0 - weight) * cosines[slots]
            # the best CANDIDATE_POOL, the lower slot first on a tie
            best = np.argsort(-approximate, kind="stable")[:CANDIDATE_POOL]
            return [(slots[i], float(surface[i])) for i in best.tolist()]
        return list(zip(slots, surface.tolist(), strict=True))

    def _approximate_cosines(self, query: _Vector, neighbours: Neighbours) -> np.ndarray | None:
        """Approximate cosine of the query with every slot (0 for most), from the postings of
        the query's rarer words and norms that may be a little stale; None if no word is known.
        The array is reused by the next query (under the lock)."""
        terms = self._candidate_terms(query, neighbours)
        if not terms:
            return None
        query_norm = math.sqrt(query.norm2) or 1.0
        # Added up word by word into one reused array (see CharGramIndex.candidates).
        dots = self._dots
        if len(dots) != len(self._refs):
            dots = self._dots = np.zeros(len(self._refs), dtype=np.float32)
        else:
            dots.fill(0.0)
        for wid, coefficient in terms:
            weights = np.frombuffer(self._post_tf[wid], dtype=np.float32) * np.float32(
                coefficient / query_norm)
            np.add.at(dots, np.frombuffer(self._post_slots[wid], dtype=np.int32), weights)
        np.multiply(dots, np.frombuffer(self._inverse_norms, dtype=np.float32), out=dots)
        return dots

    def _candidate_terms(self, query: _Vector, neighbours: Neighbours) -> list[tuple[int, float]]:
        """(word id, coefficient) of the postings to scan, rarest words first.

        A posting's term weight times the coefficient is the word's share of the dot product
        (for a related word, with the IDF of the more common word, as in `_cosine`).

        Words go in until POSTINGS_BUDGET postings are taken (the rarest always does); words
        in more than COMMON_FRACTION of all ideas never do: they are nearly stop words, cost
        the most to scan and move the ranking least.
        """
        common = max(COMMON_MIN_DF, COMMON_FRACTION * len(self._slot_of))
        terms: list[tuple[int, int, float]] = []
        for word, weight in query.weights.items():
            idf = query.idf[word]
            for other, sim in [(word, 1.0), *neighbours.get(word, [])]:
                wid = self._word_id.get(other)
                if wid is not None and (df := self._df[wid]) > 0:
                    shared = min(idf, self._idf(df))
                    terms.append((df, wid, sim * (weight / idf) * shared * shared))
        terms.sort()
        chosen: list[tuple[int, float]] = []
        scanned = 0
        for df, wid, coefficient in terms:
            if chosen and (df > common or scanned + df > POSTINGS_BUDGET):
                break
            chosen.append((wid, coefficient))
            scanned += df
        return chosen

    def _refresh_norms_if_stale(self) -> None:
        """Recompute the approximate norms once the base changed size by NORM_REFRESH_FACTOR.

        Norms computed at add time use the IDF of that moment; they only rank candidates, so
        refreshing them now and then — vectorised, a batch of words at a time (so the start-up
        build's peak memory does not hold every posting twice) — is enough.
        """
        n = len(self._slot_of)
        last = self._norms_size
        if last and last / NORM_REFRESH_FACTOR <= n <= last * NORM_REFRESH_FACTOR:
            return
        self._norms_size = n
        norm2 = np.zeros(len(self._refs), dtype=np.float64)
        batch_slots: list[np.ndarray] = []
        batch_weights: list[np.ndarray] = []
        batched = 0
        for wid, postings in enumerate(self._post_slots):
            if not postings:
                continue
            idf = self._idf(self._df[wid])
            batch_slots.append(np.frombuffer(postings, dtype=np.int32))
            weights = np.multiply(np.frombuffer(self._post_tf[wid], dtype=np.float32), idf,
                                  dtype=np.float64)
            batch_weights.append(np.square(weights, out=weights))
            batched += len(postings)
            if batched >= NORM_BATCH:
                norm2 += np.bincount(np.concatenate(batch_slots),
                                     weights=np.concatenate(batch_weights), minlength=len(norm2))
                batch_slots, batch_weights, batched = [], [], 0
        if batched:
            norm2 += np.bincount(np.concatenate(batch_slots),
                                 weights=np.concatenate(batch_weights), minlength=len(norm2))
        inverse = np.zeros_like(norm2)
        np.divide(1.0, np.sqrt(norm2), out=inverse, where=norm2 > 0)
        self._inverse_norms = array("f", inverse.astype(np.float32).tobytes())
