#!/bin/bash
# The web UI's translations (English is the source):
#   tools/i18n.sh extract   the strings in webui/ and the pages in appliance/*/ (webui/babel.cfg)
#                           -> webui/translations/messages.pot
#   tools/i18n.sh update    extract, then merge into every language's catalog (init if missing)
#   tools/i18n.sh compile   the catalogs -> .mo files beside them (not committed)
# Run from anywhere; paths are relative to the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

LANGS=(es fr pt ar hi sw)
DIR=webui/translations
POT=$DIR/messages.pot

if [[ -x .venv/bin/pybabel ]]; then
    PYBABEL=(.venv/bin/pybabel)
elif command -v pybabel >/dev/null; then
    PYBABEL=(pybabel)
else
    PYBABEL=(python3 -m babel.messages.frontend)
fi

extract() {
    mkdir -p "$DIR"
    # _l is flask_babel.lazy_gettext (webui/errors.py); the defaults cover _, gettext, ngettext.
    # From the repository's root: webui/babel.cfg names the files (it skips dot folders).
    "${PYBABEL[@]}" -q extract -F webui/babel.cfg \
        -k _l -k lazy_gettext -k lazy_ngettext:1,2 \
        --add-comments=Translators: --sort-by-file \
        --project=Commonsbox --copyright-holder="Commonsbox contributors" \
        -o "$POT" .
}

update() {
    extract  # always from the sources as they are now: a stale .pot would drop new strings
    for lang in "${LANGS[@]}"; do
        if [[ -f $DIR/$lang/LC_MESSAGES/messages.po ]]; then
            "${PYBABEL[@]}" -q update -i "$POT" -d "$DIR" -l "$lang"
        else
            "${PYBABEL[@]}" -q init -i "$POT" -d "$DIR" -l "$lang"
        fi
    done
    # What is left to translate (new strings, and fuzzy guesses to check); the counts come
    # from a throw-away compile, so the catalogs in use are left alone.
    local scratch
    scratch=$(mktemp)
    for lang in "${LANGS[@]}"; do
        "${PYBABEL[@]}" compile --statistics -l "$lang" -o "$scratch" \
            -i "$DIR/$lang/LC_MESSAGES/messages.po" 2>&1 \
            | grep -E "^[0-9]+ of [0-9]+ messages" | grep -v "(100%)" || true
    done
    rm -f "$scratch"
}

compile() {
    "${PYBABEL[@]}" -q compile -d "$DIR"
}

case "${1:-}" in
    extract) extract ;;
    update) update ;;
    compile) compile ;;
    *) echo "usage: $0 extract|update|compile" >&2; exit 2 ;;
esac
