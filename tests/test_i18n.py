"""Every text exists in bokmål and English; nynorsk covers the citizen flow; every count in a
text has plural forms (`ngettext`), so "1 støttespiller" and "3 støttespillere" both read
right."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from bot.features import campaigns, collaboration
from bot.i18n import LANGUAGES, LOCALE_DIR, catalog, normalize_language, plural_catalog, translator
from bot.staff import campaigns as staff_campaigns
from dialogs import benefit, fields

# Placeholders that hold a count: a text using one must have plural forms (and take the
# count as `n`) unless it is on ALLOWED below.
COUNTS = {"n", "count", "days", "ideas", "supporters", "realised", "total", "base", "merged",
          "counted", "decided", "pending", "yes", "partly", "no", "expected"}
# The fixed limits of a field ({min}–{max} tegn) are not counted here: they are constants, all
# above 1 (test_field_limits_take_the_plural_form), so their noun is always in the plural.
LIMITS = {"min", "max"}
# Texts with a count but no noun that changes with it: a label or a fraction reads right for
# any number. Each with its reason; anything else with a count must have plural forms.
ALLOWED = {
    "status.view": "a label: «Støttespillere: 1»",
    "slack.status.supporters": "a label: «*Støttespillere:* 1»",
    "slack_campaigns.line": "labels: «*Idéer:* 1 · *Støttespillere:* 3 · *Realisert:* 0»",
    "slack.report.benefit": "labels: «Ja 1 · Delvis 0 · Nei 2»",
    "slack.list.head": "a heading with positions: «Idéer 1–20 av 45»",
    "slack.report.rate_line": "a fraction without a noun: «• Klima: 50 % (1 av 2)»",
    "report.triage_precision_value": "a fraction without a noun: «50 % (1 av 2)»",
    "slack.home.triage_precision": "a fraction without a noun; «parene» is not the count's",
    "report.reason_title_length": "«(har 130)»: the count's noun is the limit's, in the plural",
    "report.reason_description_length": "«(har 3100)»: as for the title",
}


def _messages(language: str) -> list[tuple[str, bool, tuple[str, ...]]]:
    """Every message of every domain file: (key, has plural forms, its texts)."""
    out = []
    for path in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as fp:
            for message in read_po(fp, locale=language):
                if not message.id:
                    continue
                if message.pluralizable:
                    out.append((str(message.id[0]), True, tuple(map(str, message.string))))
                else:
                    out.append((str(message.id), False, (str(message.string),)))
    return out


def _placeholders(*texts: str) -> set[str]:
    return {name for text in texts for name in re.findall(r"{(\w+)}", text)}


def test_english_and_bokmal_are_complete() -> None:
    nb, en = catalog("nb"), catalog("en")
    assert nb, "no bokmål catalog"
    assert set(nb) - set(en) == set()
    assert set(en) - set(nb) == set()


def test_nynorsk_covers_the_citizen_flow() -> None:
    citizen = LOCALE_DIR / "nb" / "LC_MESSAGES" / "citizen.po"
    keys = set(re.findall(r'^msgid "(.+)"$', citizen.read_text(), re.MULTILINE))
    assert keys <= set(catalog("nn")) | set(plural_catalog("nn")[1])


def test_placeholders_match_across_languages() -> None:
    nb = catalog("nb")
    for lang in ("nn", "en"):
        for key, text in catalog(lang).items():
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", nb[key])), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_count_has_plural_forms(language: str) -> None:
    """A message with a count placeholder is a plural entry (msgid_plural/msgstr[n]) unless it
    is a label or a fraction on the allowlist; the allowlist holds only such messages."""
    single = [(key, texts[0]) for key, plural, texts in _messages(language) if not plural]
    counted = {key for key, text in single if _placeholders(text) & COUNTS}
    assert counted - set(ALLOWED) == set(), "a count without plural forms"
    assert set(ALLOWED) - counted == set(), "allowed, but no longer a single-form count"


def test_plural_entries_are_complete_in_every_language() -> None:
    rules = {lang: plural_catalog(lang) for lang in LANGUAGES}
    nb = rules["nb"][1]
    assert len(nb) >= 35
    for lang, (rule, forms) in rules.items():
        assert (rule(1), rule(0), rule(3)) == (0, 1, 1), lang
        assert set(forms) == set(nb), lang
        assert set(forms) & set(catalog(lang)) == set(), f"{lang}: a key both plural and not"
        for key, texts in forms.items():
            assert len(texts) == 2, (lang, key)
            assert _placeholders(*texts) == _placeholders(*nb[key]), (lang, key)


def test_catalogs_with_plural_entries_declare_their_plural_forms() -> None:
    """gettext's own tools (msgfmt) refuse plural entries without a `Plural-Forms` header."""
    for path in sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po")):
        text = path.read_text()
        if "\nmsgid_plural " in text:
            assert '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"' in text, path


PLURALS = [
    ("nb", "limit.ideas_per_day", {}, "sendt inn 1 idé det", "sendt inn 3 idéer det"),
    ("nn", "limit.ideas_per_day", {}, "sendt inn 1 idé det", "sendt inn 3 idear det"),
    ("en", "limit.ideas_per_day", {}, "submitted 1 idea in", "submitted 3 ideas in"),
    ("nb", "followups.supported", {"ref": "KI-1", "title": "Benk"}, "har den 1 støttespiller.",
     "har den 3 støttespillere."),
    ("nn", "followups.supported", {"ref": "KI-1", "title": "Benk"}, "har han 1 støttespelar.",
     "har han 3 støttespelarar."),
    ("en", "followups.supported", {"ref": "KI-1", "title": "Bench"}, "has 1 supporter.",
     "has 3 supporters."),
    ("nb", "followups.benefit_ask", {"ref": "KI-1", "title": "Benk"}, "For 1 dag siden",
     "For 3 dager siden"),
    ("nn", "followups.benefit_ask", {"ref": "KI-1", "title": "Benk"}, "For 1 dag sidan",
     "For 3 dagar sidan"),
    ("en", "followups.benefit_ask", {"ref": "KI-1", "title": "Bench"}, "1 day ago",
     "3 days ago"),
    ("nb", "report.export_done", {}, "1 idé eksportert.", "3 ideer eksportert."),
    ("nn", "report.export_done", {}, "1 idé eksportert.", "3 idear eksporterte."),
    ("en", "report.export_done", {}, "1 idea exported.", "3 ideas exported."),
    ("nb", "slack_campaigns.collab_sent", {"ref": "KI-1"}, "sendt til 1 person.",
     "sendt til 3 personer."),
    ("nn", "slack_campaigns.collab_sent", {"ref": "KI-1"}, "send til 1 person.",
     "send til 3 personar."),
    ("en", "slack_campaigns.collab_sent", {"ref": "KI-1"}, "sent to 1 person.",
     "sent to 3 people."),
    ("nb", "slack_campaigns.status.collab", {"yes": 0}, "1 invitasjon sendt",
     "3 invitasjoner sendt"),
    ("nn", "slack_campaigns.status.collab", {"yes": 0}, "1 invitasjon send",
     "3 invitasjonar sende"),
    ("en", "slack_campaigns.status.collab", {"yes": 0}, "1 invitation sent",
     "3 invitations sent"),
    ("en", "submit.title_too_long", {"max": 120}, "(1 character)", "(3 characters)"),
    ("nn", "followups.digest_more", {}, "… og 1 idé til", "… og 3 idear til"),
]


@pytest.mark.parametrize(("language", "key", "params", "one", "three"), PLURALS)
def test_plural_forms_render_for_one_and_three(
        language: str, key: str, params: dict[str, object], one: str, three: str) -> None:
    t = translator(language)
    assert one in t(key, n=1, **params)
    assert three in t(key, n=3, **params)
    assert t.plural(key, 3, **params) == t(key, n=3, **params)


def test_texts_with_two_counts_inflect_each() -> None:
    nb, nn, en = translator("nb"), translator("nn"), translator("en")
    period = nb("followups.days", n=1)
    assert nb("followups.digest_stale", n=3, period=period) == \
        "3 idéer har stått som Nytt i 1 dag eller mer:"
    assert en("followups.digest_stale", n=1, period=en("followups.days", n=14)) == \
        "1 idea has been New for 14 days or more:"
    assert nn("report.import_nothing", count=1, n=3).startswith("1 av 3 rader vart avviste.")
    assert nb("report.import_nothing", count=1, n=1).startswith("1 av 1 rad ble avvist.")
    figures = ", ".join(nn(f"campaigns.summary.{part}", n=n)
                        for part, n in (("ideas", 1), ("supporters", 3), ("realised", 0)))
    assert "avslutta: 1 idé, 3 støttespelarar, 0 nyttiggjort." in \
        nn("campaigns.summary", title="Grønt", figures=figures)


def test_fractional_and_missing_counts_take_the_plural() -> None:
    nb = translator("nb")
    assert nb("report.triage_value", pending=2, n=1.0, days="1") == "2 (eldste 1 dag)"
    assert nb("report.triage_value", pending=2, n=1.5, days="1,5") == "2 (eldste 1,5 dager)"
    assert nb("followups.days") == "{n} dager"


def test_field_limits_take_the_plural_form() -> None:
    """{min} and {max} in a text are these constants; none is 1, so their noun («tegn»,
    "characters") is rightly in the plural."""
    limits = [fields.TITLE_MIN, fields.TITLE_MAX, fields.DESCRIPTION_MIN, fields.DESCRIPTION_MAX,
              fields.PLACE_MAX, benefit.COMMENT_MAX, staff_campaigns.COLLAB_TEXT_MIN,
              collaboration.TEXT_MAX, campaigns.TITLE_MIN, campaigns.TITLE_MAX,
              campaigns.QUESTION_MIN, campaigns.QUESTION_MAX, campaigns.TEXT_MAX]
    assert min(limits) > 1


def test_language_codes() -> None:
    assert normalize_language("nb") == "nb"
    assert normalize_language("no") == "nb"
    assert normalize_language("nn-NO") == "nn"
    assert normalize_language("de") == "en"
    assert normalize_language(None) is None
    assert translator("nn")("status.merged") == "Slått saman"
    assert translator("xx")("status.new") == "Nytt"


def test_one_word_for_focus_area_and_submitted() -> None:
    """Bokmål says "satsningsområde" everywhere (the innovation strategy's word), so the chat
    and the board agree; nynorsk labels a date "Sendt inn" (the participle), not "Send inn"."""
    nb = catalog("nb")
    assert not [key for key, text in nb.items() if "satsingsområde" in text.casefold()]
    assert any("satsningsområde" in text.casefold() for text in nb.values())
    nn = catalog("nn")
    for key in ("web.idea.submitted", "web.report.submitted", "report.submitted"):
        assert nn[key] == "Sendt inn", key
    assert nn["report.stage_submitted"].startswith("Sendt inn")
