"""Every string the web UI shows is translated, well-formed, in every language it offers.

The messages are extracted afresh from the sources (webui/babel.cfg, from the repository's
root, with the keywords tools/i18n.sh passes), so a string added without its translations
fails here. The catalogs are compiled to a temporary directory: no .mo file needs to exist
beforehand.
"""

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
WEBUI = ROOT / "webui"
TRANSLATIONS = WEBUI / "translations"
LANGS = ["es", "fr", "pt", "ar", "hi", "sw"]

# Python's %-formatting, as gettext's python-format: %(name)s, %(num)d, %%, %s ...
PLACEHOLDER = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?(?P<type>[a-zA-Z%])"
)


def placeholders(text: str) -> set[str]:
    return {
        f"%({m['name']}){m['type']}" if m["name"] is not None else f"%{m['type']}"
        for m in PLACEHOLDER.finditer(text)
        if m["type"] != "%"
    }


def extraction_keywords() -> dict:
    """Babel's defaults plus the -k options tools/i18n.sh gives pybabel (one source of truth)."""
    script = (ROOT / "tools" / "i18n.sh").read_text()
    extra = re.findall(r"(?:^|\s)-k\s+(\S+)", script)
    assert "_l" in extra, "tools/i18n.sh no longer extracts lazy_gettext as _l"
    keywords = dict(DEFAULT_KEYWORDS)
    keywords.update(parse_keywords(extra))
    return keywords


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Catalog:
    """The messages in the sources now, as a .pot would hold them."""
    with open(WEBUI / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f, str(WEBUI / "babel.cfg"))
    pot = Catalog(project="Commonsbox")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT),
        method_map,
        options_map,
        keywords=extraction_keywords(),
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    ):
        pot.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    ids = [m.id for m in pot if m.id]
    assert len(ids) > 50, f"only {len(ids)} messages extracted: is webui/babel.cfg right?"
    assert "Set up this box" in ids and "Log in" in ids, "templates were not extracted"
    assert "That name is already taken." in ids, "lazy_gettext (_l) strings were not extracted"
    # A capability's pages and templates are in its folder (appliance/vpn/pages.py, ...).
    assert "Download the configuration file" in ids, "a capability's templates were not extracted"
    assert "The storage is unlocked." in ids, "a capability's pages.py was not extracted"
    return pot


def load(lang: str) -> Catalog:
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """The catalogs compiled with Babel, as `tools/i18n.sh compile` does, to a temporary tree."""
    out = tmp_path_factory.mktemp("translations")
    for lang in LANGS:
        target = out / lang / "LC_MESSAGES" / "messages.mo"
        target.parent.mkdir(parents=True)
        with open(target, "wb") as f:
            write_mo(f, load(lang))
    return out


def test_every_language_the_ui_offers_has_a_catalog():
    from webui.i18n import LANGUAGES

    assert sorted(set(LANGUAGES) - {"en"}) == sorted(LANGS)


@pytest.mark.parametrize("lang", LANGS)
def test_plural_forms_header_is_the_languages_own(lang):
    catalog = load(lang)
    expected = get_plural(lang)
    assert catalog.num_plurals == expected.num_plurals
    assert catalog.plural_expr == expected.plural_expr
    if lang == "ar":
        assert catalog.num_plurals == 6


@pytest.mark.parametrize("lang", LANGS)
def test_every_message_is_translated(lang, template):
    catalog = load(lang)
    assert not catalog.fuzzy, f"{lang}: the catalog header is marked fuzzy"
    problems = []
    for msg in template:
        if not msg.id:
            continue
        key = msg.id[0] if isinstance(msg.id, tuple) else msg.id
        found = catalog.get(key, context=msg.context)
        if found is None:
            problems.append(f"missing: {key!r} (run tools/i18n.sh extract && tools/i18n.sh update)")
            continue
        if found.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        if isinstance(msg.id, tuple) != isinstance(found.id, tuple) or found.id != msg.id:
            problems.append(f"singular/plural mismatch: {key!r}")
            continue
        forms = found.string if isinstance(found.string, (tuple, list)) else (found.string,)
        if isinstance(msg.id, tuple) and len(forms) != catalog.num_plurals:
            problems.append(f"{len(forms)} plural forms, not {catalog.num_plurals}: {key!r}")
        if not all(form and form.strip() for form in forms):
            problems.append(f"untranslated: {key!r}")
    assert not problems, f"{lang}:\n  " + "\n  ".join(problems)


def forms_for_one_number(catalog: Catalog) -> set[int]:
    """Plural forms used for exactly one number (Arabic's 0, 1 and 2; Swahili's 1): those may
    say the number in words ("جهازان", "kimoja") instead of through the placeholder."""
    plural = gettext.c2py(catalog.plural_expr)
    used: dict[int, int] = {}
    for n in range(0, 2000):
        used[plural(n)] = used.get(plural(n), 0) + 1
    used[plural(1_000_000)] = used.get(plural(1_000_000), 0) + 2  # a millions-only form ("many")
    return {form for form, count in used.items() if count == 1}


@pytest.mark.parametrize("lang", LANGS)
def test_placeholders_survive_translation(lang, template):
    catalog = load(lang)
    exact = forms_for_one_number(catalog)
    problems = []
    for msg in template:
        if not msg.id:
            continue
        found = catalog.get(msg.id[0] if isinstance(msg.id, tuple) else msg.id, context=msg.context)
        if found is None or not found.string:
            continue  # reported by test_every_message_is_translated
        ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
        wanted = set().union(*(placeholders(i) for i in ids))
        forms = found.string if isinstance(found.string, (tuple, list)) else (found.string,)
        for index, form in enumerate(forms):
            have = placeholders(form)
            if have - wanted:
                problems.append(f"{ids[0]!r}[{index}]: unknown {sorted(have - wanted)}")
            missing = wanted - have
            if missing and not (isinstance(msg.id, tuple) and index in exact):
                problems.append(f"{ids[0]!r}[{index}]: lost {sorted(missing)}")
            # Jinja's new-style gettext applies % to every message, with or without values.
            sample = {m["name"]: 1 for m in PLACEHOLDER.finditer(form) if m["name"]}
            try:
                form % sample
            except (ValueError, TypeError, KeyError) as err:
                problems.append(f"{ids[0]!r}[{index}]: does not format ({err}); write %% for %")
    errors = [f"{msg.id!r}: {err}" for msg, errs in catalog.check() for err in errs]
    assert not problems + errors, f"{lang}:\n  " + "\n  ".join(problems + errors)


@pytest.fixture
def app(compiled, tmp_path):
    from webui import create_app

    # No agent: its socket does not exist, and the pages used below never call it.
    app = create_app(tmp_path / "no-agent.sock", secret_key=b"k" * 32, testing=True)
    app.extensions["babel"].translation_directories = [str(compiled)]
    return app


@pytest.mark.parametrize(
    "lang, expected",
    [
        ("ar", ["عذرًا", "هذه الصفحة غير موجودة.", "تغيير اللغة", "العودة إلى البداية"]),
        ("hi", ["माफ़ कीजिए", "ऐसा कोई पेज नहीं है।", "भाषा बदलें", "शुरुआत पर वापस जाएँ"]),
    ],
)
def test_a_page_renders_in_the_browsers_language(app, lang, expected):
    response = app.test_client().get(
        "/no-such-page", headers={"Accept-Language": f"{lang},en;q=0.5"}
    )
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert f'lang="{lang}"' in page
    assert f'dir="{"rtl" if lang == "ar" else "ltr"}"' in page
    for text in expected:
        assert text in page
    assert "There is no such page." not in page and "Change language" not in page


def test_arabic_plurals_and_values_come_out_right(app):
    from flask_babel import force_locale, gettext, lazy_gettext, ngettext

    from webui.errors import BY_CODE, waiting

    one, many = "%(num)d device is online.", "%(num)d devices are online."
    with app.test_request_context("/"), force_locale("ar"):
        assert [ngettext(one, many, n) for n in (0, 1, 2, 5, 11, 100)] == [
            "لا يوجد أي جهاز متصل الآن.",
            "جهاز واحد متصل الآن.",
            "جهازان متصلان الآن.",
            "5 أجهزة متصلة الآن.",
            "11 جهازًا متصلًا الآن.",
            "100 جهاز متصل الآن.",
        ]
        assert (
            gettext("Address in the VPN: %(ip)s", ip="10.8.0.2") == "العنوان في شبكة VPN: 10.8.0.2"
        )
        assert (
            str(BY_CODE["not_found"]) == "هذا لم يعد موجودًا."
        )  # lazy strings from webui/errors.py
        assert str(lazy_gettext("Log in")) == "تسجيل الدخول"
    with app.test_request_context("/"), force_locale("hi"):
        assert ngettext(one, many, 1) == "1 डिवाइस ऑनलाइन है।"
        assert ngettext(one, many, 3) == "3 डिवाइस ऑनलाइन हैं।"
        assert waiting(7) == ("बहुत ज़्यादा कोशिशें हो गईं: कृपया 7 सेकंड रुकें और फिर से कोशिश करें।")
