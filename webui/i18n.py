"""Languages: chosen from the browser, overridden by the member's own choice."""

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


def pick_locale() -> str:
    user = getattr(g, "user", None)
    if user and user.get("language") in LANGUAGES:
        return user["language"]
    if session.get("language") in LANGUAGES:
        return session["language"]
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"
