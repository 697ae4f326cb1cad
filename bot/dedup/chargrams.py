"""Surface similarity of idea texts: character trigrams, for the duplicate detector.

Why a second signal next to the word vectors of `bot.dedup.detector`
------------------------------------------------------------
Word stems miss what a citizen's thumbs do to a text: "hlul" and "holl" for "hull", "Ryken" for
"Røyken", "kommunnen". Short words are too ambiguous to pair by spelling rules, but they still
share most of their letter triples with the word they stand for. Trigrams over the whole text
— stop words included — also see a copied phrase ("er mørk om vinteren") that word stems,
without order and stop words, cannot. A resubmitted or forwarded idea is mostly such copies.

So every idea also has the set of its character trigrams (over its casefolded words joined by
single spaces), and two texts' surface similarity is the Jaccard index of their sets: shared
trigrams over all trigrams of either. It needs no weights, so it does not drift as the idea
base grows, and it lies in 0–1.

`CharGramIndex` keeps an inverted index (trigram → slots) to find, without a scan, the ideas
sharing the most *rare* trigrams with a query — the candidates a typo hides from the word index;
the trigrams at word edges and across words are taken first, as the trigrams inside a word
mostly repeat what its stem already told the word index — and each slot's trigram ids to
compute exact Jaccard indexes for a handful of candidates (all at once, with numpy).
Slots are the duplicate detector's; it owns the lock.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

__all__ = ["CharGramIndex", "char_grams", "jaccard", "position", "top_slots"]

GRAM = 3  # letters per gram: 3 keeps a typo in a short word from sharing nothing
COMMON_FRACTION = 0.25  # trigrams in more ideas than this are not used to find candidates
COMMON_MIN_DF = 50  # …but never below this many ideas
POSTINGS_BUDGET = 100_000  # postings scanned per query at most (see candidates)
_SHORT_ID_LIMIT = 1 << 16  # a slot's trigram ids are stored in 16 bits when all are below
_DTYPES = {"H": np.uint16, "i": np.int32}  # numpy's reading of a slot's trigram ids


def char_grams(tokens: list[str]) -> frozenset[str]:
    """The character trigrams of casefolded word tokens joined by single spaces."""
    text = " ".join(tokens)
    return frozenset([text[i : i + GRAM] for i in range(len(text) - GRAM + 1)])


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Shared trigrams over all trigrams of either text (0 when either has none)."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def position(postings: array, slot: int) -> int:
    """Where `slot` is in a postings array. numpy compares machine ints; `array.index` makes a
    Python int of every entry, 20 times slower on the long postings of common words."""
    return int(np.flatnonzero(np.frombuffer(postings, dtype=np.int32) == slot)[0])


def top_slots(scores: np.ndarray, limit: int) -> list[int]:
    """Indexes of the `limit` largest positive scores, in no particular order.

    Only the entries above half the best score are partitioned when there are enough of them:
    most slots score little, and partitioning all of them costs more than the search did."""
    if not len(scores) or limit <= 0:
        return []
    best = float(scores.max())
    if best <= 0:
        return []
    positive = np.flatnonzero(scores >= 0.5 * best)
    if len(positive) < limit:
        positive = np.flatnonzero(scores > 0)
    if len(positive) > limit:
        cut = len(positive) - limit
        positive = positive[np.argpartition(scores[positive], cut)[cut:]]
    return positive.tolist()


class CharGramIndex:
    """Trigram postings per slot, to find and compare ideas by their letters. Not thread-safe."""

    def __init__(self) -> None:
        self._gram_id: dict[str, int] = {}
        self._postings: list[array] = []  # slots per trigram id; its length is the trigram's DF
        self._slot_grams: list[array] = []  # the trigram ids of each slot (16 or 32 bits)
        self._scales = array("f")  # 1 / sqrt(number of trigrams) per slot, 0 when empty
        self._inner = bytearray()  # per trigram id: 1 if inside a word (no space in it)
        # candidates() adds up its scores here (reused, see there; 32 bits rank well enough)
        self._scores = np.zeros(0, dtype=np.float32)

    def add(self, slot: int, grams: frozenset[str]) -> None:
        """Index the trigrams of the idea in `slot` (which must be empty)."""
        while len(self._slot_grams) <= slot:
            self._slot_grams.append(array("i"))
            self._scales.append(0.0)
        gram_id, postings = self._gram_id, self._postings
        try:
            ids = array("i", map(gram_id.__getitem__, grams))
        except KeyError:  # a trigram no idea had yet
            for gram in grams:
                if gram not in gram_id:
                    gram_id[gram] = len(postings)
                    postings.append(array("i"))
                    self._inner.append(" " not in gram)
            ids = array("i", map(gram_id.__getitem__, grams))
        for gid in ids:
            postings[gid].append(slot)
        if len(postings) <= _SHORT_ID_LIMIT or max(ids, default=0) < _SHORT_ID_LIMIT:
            ids = array("H", ids)  # half the memory while the trigram ids fit in 16 bits
        self._slot_grams[slot] = ids
        self._scales[slot] = 1.0 / math.sqrt(len(ids)) if ids else 0.0

    def remove(self, slot: int) -> None:
        """Forget the idea in `slot`."""
        for gid in self._slot_grams[slot]:
            postings = self._postings[gid]
            del postings[position(postings, slot)]
        self._slot_grams[slot] = array("i")
        self._scales[slot] = 0.0

    def known(self, grams: frozenset[str]) -> set[int]:
        """Ids of the query's trigrams that some idea has."""
        ids = self._gram_id
        return {ids[g] for g in grams if g in ids}

    def jaccard(self, query: set[int], query_size: int, slot: int) -> float:
        """Jaccard index of a query (its known trigram ids, its trigram count) and a slot."""
        grams = self._slot_grams[slot]
        if not query_size or not grams:
            return 0.0
        shared = len(query.intersection(grams))
        return shared / (query_size + len(grams) - shared)

    def jaccards(self, query: set[int], query_size: int, slots: list[int]) -> np.ndarray:
        """`jaccard` of the query with each of `slots` (at once: a query meets dozens)."""
        out = np.zeros(len(slots), dtype=np.float64)
        if not query_size or not slots:
            return out
        mask = np.zeros(len(self._postings), dtype=np.bool_)
        mask[list(query)] = True
        grams = [self._slot_grams[slot] for slot in slots]
        sizes = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
        if all(g.typecode == "H" for g in grams):  # the usual case: joined as bytes, at once
            ids = np.frombuffer(b"".join(grams), dtype=np.uint16)
        else:
            ids = np.concatenate([np.frombuffer(g, dtype=_DTYPES[g.typecode]) for g in grams])
        # shared trigrams of each slot: a running count of the query's, read at its bounds
        running = np.concatenate(([0], np.cumsum(mask[ids], dtype=np.int64)))
        ends = np.cumsum(sizes)
        shared = running[ends] - running[ends - sizes]
        np.divide(shared, query_size + sizes - shared, out=out)
        return out

    def candidates(self, query: set[int], ideas: int, limit: int) -> list[int]:
        """Up to `limit` slots sharing the most rare trigrams with the query (IDF-weighted,
        divided by the square root of the slot's trigram count, so long texts do not win by
        length). Trigrams in more than COMMON_FRACTION of the `ideas` are skipped.

        The trigrams at a word's edges and across two words come first, rarest first: they
        hold what the word index cannot see (word order, copied phrases, short words and stop
        words between them), while the trigrams inside a word mostly repeat its stem. The
        others follow while POSTINGS_BUDGET lasts (a one-word query has only those)."""
        common = max(COMMON_MIN_DF, COMMON_FRACTION * ideas)
        postings, inner = self._postings, self._inner
        ranked = sorted((inner[g], count, g) for g in query if (count := len(postings[g])))
        if not ranked:
            return []
        chosen: list[int] = []
        scanned = 0
        for _, count, gid in ranked:
            if count > common:
                continue
            if chosen and scanned + count > POSTINGS_BUDGET:
                break
            chosen.append(gid)
            scanned += count
        if not chosen:  # every trigram is common: the rarest still tells something
            chosen.append(min(ranked, key=lambda r: r[1])[2])
        # Added up term by term into one reused array: concatenating the postings (megabytes
        # per query) made the allocator map and fault fresh pages every time.
        scores = self._scores
        if len(scores) != len(self._scales):
            scores = self._scores = np.zeros(len(self._scales), dtype=np.float32)
        else:
            scores.fill(0.0)
        for gid in chosen:
            slots = postings[gid]
            idf = math.log((ideas + 1) / (len(slots) + 1)) + 1.0
            np.add.at(scores, np.frombuffer(slots, dtype=np.int32), np.float32(idf))
        np.multiply(scores, np.frombuffer(self._scales, dtype=np.float32), out=scores)
        return top_slots(scores, limit)
