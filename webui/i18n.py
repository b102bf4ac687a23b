"""Languages: chosen from the browser, overridden by the member's own choice."""

from babel import Locale
from flask import g, request, session

LANGUAGES = {
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "pt": "Português",
    "ar": "العربية",
    "hi": "हिन्दी",
    "sw": "Kiswahili",
}
RTL = {"ar"}
# Made once: Flask-Babel parses a language code into a Locale on every page otherwise.
LOCALES = {code: Locale.parse(code) for code in LANGUAGES}


def pick_locale() -> Locale:
    user = getattr(g, "user", None)
    if user and user.get("language") in LANGUAGES:
        return LOCALES[user["language"]]
    if session.get("language") in LANGUAGES:
        return LOCALES[session["language"]]
    return LOCALES[request.accept_languages.best_match(list(LANGUAGES)) or "en"]
