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


def test_jaccards_of_many_slots_agree_with_one_at_a_time() -> None:
    index = CharGramIndex()
    texts = [["hull", "i", "veien"], [], ["lys", "i", "veien"], ["benk", "ved", "vannet"]]
    for slot, tokens in enumerate(texts):
        index.add(slot, char_grams(tokens))
    query = char_grams(["holl", "i", "veien"])
    known = index.known(query)
    slots = [3, 0, 1, 2, 0]
    expected = [index.jaccard(known, len(query), slot) for slot in slots]
    assert index.jaccards(known, len(query), slots).tolist() == expected
    assert index.jaccards(known, 0, slots).tolist() == [0.0] * 5
    assert index.jaccards(known, len(query), []).tolist() == []


def test_candidates_take_the_trigrams_at_word_edges_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With room for one trigram's postings, a shared word boundary ("l v" of "hull ved")
    decides, not a rarer trigram inside a word."""
    import bot.dedup.chargrams as chargrams

    index = CharGramIndex()
    index.add(0, char_grams(["hull", "ved", "vannet"]))  # "l v": the query's phrase
    index.add(1, char_grams(["kvull"]))  # shares only "ull", inside a word
    index.add(2, char_grams(["hull", "ved", "skolen"]))  # "l v" too
    query = index.known(char_grams(["kvull", "ved"]))
    monkeypatch.setattr(chargrams, "POSTINGS_BUDGET", 2)
    assert set(index.candidates(query, ideas=3, limit=5)) == {0, 2}
    monkeypatch.setattr(chargrams, "POSTINGS_BUDGET", 100)
    assert set(index.candidates(query, ideas=3, limit=5)) == {0, 1, 2}
    one_word = index.known(char_grams(["kvull"]))  # no edge but its own: inner ones count
    assert 1 in index.candidates(one_word, ideas=3, limit=5)
