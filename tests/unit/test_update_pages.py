"""The update page's words, in every language the web UI offers: what came of an update and
what did not work, as the health gate records them (the gate driven with the real GRUB
backend on a temporary EFI partition, as in test_update_gate.py); a trial in progress, from
the service's own status on that backend; every refusal of an update, as it comes over the
agent's socket (its code and field)."""

import html
from datetime import UTC, datetime

import pytest
from flask import g

from appliance.errors import ERRORS_BY_CODE, Invalid
from appliance.update import feed, fetch, pages, record, stick
from appliance.update.capability import UpdateCapability
from appliance.update.service import Updates
from webui.errors import BY_CODE, GENERIC

from .test_translations import LANGS, compiled  # noqa: F401 (a fixture)
from .test_update_gate import box, probe, run, trial  # noqa: F401 (a fixture)

ALL = ["en", *LANGS]
SAID = {
    "agent": "The box's agent did not answer.",
    "webui": "The web pages did not answer.",
    "vpn": "A check failed: VPN interface",
    "unit": 'Did not run again: <span class="ltr">commonsbox-webui.service</span>',
}


@pytest.fixture
def app(compiled, tmp_path):  # noqa: F811
    from webui import create_app

    app = create_app(tmp_path / "no-agent.sock", secret_key=b"k" * 32, testing=True)
    app.extensions["babel"].translation_directories = [str(compiled)]
    return app


def speaking(app, lang):
    context = app.test_request_context("/update/", headers={"Accept-Language": lang})
    context.push()
    g.user = {"name": "ana", "role": "admin"}
    return context


def gate_says(box, broken):  # noqa: F811
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    run(backend, probe(**broken), [])
    return record.read()["history"][0]


@pytest.mark.parametrize(
    "broken, said",
    [
        (dict(agent=False), "agent"),
        (dict(webui=False), "webui"),
        (dict(health=[{"capability": "vpn", "name": "interface", "ok": False}]), "vpn"),
        (dict(units=["postfix.service"]), "unit"),
    ],
    ids=["agent", "webui", "vpn", "unit"],
)
def test_what_did_not_work_is_said_in_words_in_every_language(app, box, broken, said):  # noqa: F811
    last = gate_says(box, broken)
    english = None
    for lang in ALL:
        context = speaking(app, lang)
        try:
            words = [html.unescape(pages.lost_words(lost)) for lost in last["lost"]]
            sentence = pages.outcome(last)
            [check] = UpdateCapability().health(record.read(), None)
            on_dashboard = pages.check_words(check.detail)
        finally:
            context.pop()
        if lang == "en":
            english = (words, sentence)
            assert SAID[said] in words, words
            assert sentence == (
                "Version 2026.12.07.2 was tried and not kept: the box went back to "
                "version 2026.12.07.1."
            )
            assert on_dashboard.startswith(
                "Version 2026.12.07.2 was tried and not kept: the box went back to the "
                "version before. What did not work: "
            )
        else:
            assert (words, sentence) != english, lang
        for raw in ("health check failing", "not running:", "does not answer", "rolled back"):
            assert raw not in " ".join(words) + sentence + on_dashboard, (lang, raw)


def test_an_update_that_did_not_start_is_said(app, box):  # noqa: F811
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    boot("A")  # the new kernel panicked
    run(backend, probe(), [])
    last = record.read()["history"][0]
    [check] = UpdateCapability().health(record.read(), None)
    context = speaking(app, "en")
    try:
        assert pages.outcome(last) == (
            "Version 2026.12.07.2 did not start: the box went back to version 2026.12.07.1 "
            "by itself."
        )
        assert pages.check_words(check.detail) == (
            "Version 2026.12.07.2 did not start: the box went back to the version before by itself."
        )
        assert pages.check_words("something the page does not know") is None
        assert str(pages.lost_words("something new")) == "<bdi>something new</bdi>"
    finally:
        context.pop()


def test_a_trial_in_progress_is_said_and_nothing_else_is_offered(app, box, tmp_path):  # noqa: F811
    backend, boot, reboots, before = box
    trial(backend, boot, before)  # booted into B, which is tried once
    keyring = tmp_path / "keyring.pem"
    keyring.write_text("the update certificate")
    status = Updates(backend=lambda: backend, keyring=keyring).status()
    assert status["in_trial"]
    context = speaking(app, "en")
    try:
        body = " ".join(pages.render(status)[0].split())
    finally:
        context.pop()
    assert (
        "Trying version 2026.12.07.2: it is kept once the box is healthy, otherwise the "
        "previous version comes back by itself."
    ) in body
    assert "System slot" in body and '<span class="ltr">B</span>' in body
    assert 'action="/update/feed"' not in body and 'action="/update/stick"' not in body
    assert 'href="/update/rollback"' not in body


def refusals() -> list:
    bundle = feed.Bundle("qemu-amd64", feed.Version.parse("2026.10.01.1"), "b.raucb", 1, "0" * 64)
    made = [
        feed.Tampered(),
        feed.Expired(datetime(2026, 11, 1, tzinfo=UTC)),
        feed.WrongBoard("qemu-amd64", ["rpi5"]),
        feed.Downgrade(bundle, feed.Version.parse("2026.11.02.1")),
        feed.BundleMismatch("is not the one"),
        feed._not_a_feed("not JSON"),
        stick.UnsafeUpdateStick("commonsbox/update is a link"),
        fetch.Unreachable("https://updates.example.org/", "the server answered 404"),
    ]
    try:
        fetch.base_url("https://user:pw@updates.example.org/")
    except Invalid as err:
        made.append(err)
    # as the web UI gets them: the agent's answer over its socket, its code and field
    return [ERRORS_BY_CODE[e.code](e.message, e.field) for e in made]


def test_every_refusal_of_an_update_has_its_own_words_in_every_language(app):
    english = {}
    for lang in ALL:
        context = speaking(app, lang)
        try:
            said = [pages.refusal(err) for err in refusals()]
            generic = {str(GENERIC), *(str(m) for m in BY_CODE.values())}
        finally:
            context.pop()
        assert len(set(said)) == len(said), (lang, said)
        assert not set(said) & generic, lang
        if lang == "en":
            english = said
        else:
            assert not set(said) & set(english), lang
