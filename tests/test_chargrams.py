"""The trigram index behind the duplicate detector's surface similarity."""

from __future__ import annotations

from array import array

import numpy as np
import pytest

from bot.dedup.chargrams import CharGramIndex, char_grams, jaccard, position, top_slots


def test_trigrams_span_word_boundaries() -> None:
    assert char_grams(["hull", "i"]) == {"hul", "ull", "ll ", "l i"}
    assert char_grams(["ab"]) == frozenset()
    assert char_grams([]) == frozenset()


def test_jaccard() -> None:
    a, b = char_grams(["hull", "i"]), char_grams(["holl", "i"])
    assert jaccard(a, a) == 1.0
    assert jaccard(a, b) == pytest.approx(2 / 6)  # "ll ", "l i" of hul ull hol oll ll  l i
    assert jaccard(a, frozenset()) == 0.0


def test_index_jaccard_agrees_with_the_sets() -> None:
    index = CharGramIndex()
    texts = [["hull", "i", "veien"], ["lys", "i", "veien"], ["benk", "ved", "vannet"]]
    for slot, tokens in enumerate(texts):
        index.add(slot, char_grams(tokens))
    query = char_grams(["holl", "i", "veien"])
    known = index.known(query)
    for slot, tokens in enumerate(texts):
        expected = jaccard(query, char_grams(tokens))
        assert index.jaccard(known, len(query), slot) == pytest.approx(expected)


def test_candidates_follow_rare_shared_trigrams_and_forget_removed_slots() -> None:
    index = CharGramIndex()
    index.add(0, char_grams(["semsvannet"]))
    index.add(1, char_grams(["vollen"]))
    index.add(2, char_grams(["semsvannet", "benker"]))
    query = index.known(char_grams(["semsvanet"]))
    assert set(index.candidates(query, ideas=3, limit=5)) == {0, 2}
    index.remove(0)
    assert index.candidates(query, ideas=2, limit=5) == [2]
    index.add(0, char_grams(["vollen"]))  # a reused slot carries only its new text
    assert index.candidates(query, ideas=3, limit=5) == [2]


def test_top_slots() -> None:
    scores = np.array([0.0, 3.0, 1.0, 0.0, 2.0, 0.5])
    assert sorted(top_slots(scores, 2)) == [1, 4]
    assert sorted(top_slots(scores, 10)) == [1, 2, 4, 5]
    assert top_slots(np.zeros(4), 3) == [] and top_slots(scores, 0) == []


def test_position_finds_a_slot_and_leaves_the_array_resizable() -> None:
    postings = array("i", [7, 3, 9, 3])
    assert position(postings, 9) == 2 and position(postings, 3) == 1
    del postings[position(postings, 7)]  # no numpy view may still hold the buffer
    assert postings.tolist() == [3, 9, 3]
