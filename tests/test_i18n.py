"""Every text exists in bokmål and English; nynorsk covers the citizen flow."""

from __future__ import annotations

import re

from bot.i18n import LOCALE_DIR, catalog, normalize_language, translator


def test_english_and_bokmal_are_complete() -> None:
    nb, en = catalog("nb"), catalog("en")
    assert nb, "no bokmål catalog"
    assert set(nb) - set(en) == set()
    assert set(en) - set(nb) == set()


def test_nynorsk_covers_the_citizen_flow() -> None:
    citizen = LOCALE_DIR / "nb" / "LC_MESSAGES" / "citizen.po"
    keys = set(re.findall(r'^msgid "(.+)"$', citizen.read_text(), re.MULTILINE))
    assert keys <= set(catalog("nn"))


def test_placeholders_match_across_languages() -> None:
    nb = catalog("nb")
    for lang in ("nn", "en"):
        for key, text in catalog(lang).items():
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", nb[key])), key


def test_language_codes() -> None:
    assert normalize_language("nb") == "nb"
    assert normalize_language("no") == "nb"
    assert normalize_language("nn-NO") == "nn"
    assert normalize_language("de") == "en"
    assert normalize_language(None) is None
    assert translator("nn")("status.merged") == "Slått saman"
    assert translator("xx")("status.new") == "Nytt"
