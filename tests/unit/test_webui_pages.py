"""The web UI's pages live in their capability's folder (pages.py and templates/), found
from the list of capabilities as the API's methods and the CLI's commands are; the agent
never imports them."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from appliance import capabilities
from appliance.capability import Capability

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(tmp_path):
    from webui import create_app

    # No agent: its socket does not exist, and the pages opened below never call it.
    return create_app(tmp_path / "no-agent.sock", secret_key=b"k" * 32, testing=True)


def template_folders() -> list[Path]:
    return [ROOT / "webui" / "templates", *sorted(ROOT.glob("appliance/*/templates"))]


def test_the_agent_never_imports_the_web_ui():
    """The agent runs as root: Flask, the web UI and the pages stay out of its process."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, appliance.agent; print(*sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "appliance.agent" in loaded
    assert [
        m for m in loaded if m.split(".")[0] in ("flask", "flask_babel", "jinja2", "webui")
    ] == []
    assert [m for m in loaded if m.endswith(".pages")] == []


def test_each_capability_with_pages_keeps_them_and_their_templates_in_its_folder(app):
    from webui.views import page_modules

    folders = {
        Path(m.__file__).parent.name: {bp.name for bp in m.blueprints} for m in page_modules()
    }
    assert folders == {
        "accounts": {"auth", "account", "users"},
        "vpn": {"devices"},
        "mail": {"mail", "autoconfig"},
        "files": {"files"},
        "storage": {"storage"},
        "ssh": {"ssh"},
        "update": {"update"},
    }
    for module in page_modules():
        here = Path(module.__file__).parent
        folders_used = {
            bp.jinja_loader.searchpath[0] for bp in module.blueprints if bp.jinja_loader
        }
        assert folders_used == {str(here / "templates")}  # (mail autoconfig's has no template)
        assert all(app.blueprints[bp.name] is bp for bp in module.blueprints)
    assert not (ROOT / "webui" / "templates" / "devices.html").exists()


def test_template_names_are_unique_across_folders():
    """Flask finds a template by its name in every blueprint's folder: a name used twice
    would show one page's template on the other's."""
    names = [t.name for folder in template_folders() for t in folder.glob("*.html")]
    assert len(names) > 20
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_every_page_links_to_a_page_that_exists(app):
    """Every url_for in the templates and the pages names an endpoint the app has."""
    sources = [t for folder in template_folders() for t in folder.glob("*.html")]
    sources += [*ROOT.glob("webui/**/*.py"), *ROOT.glob("appliance/*/pages.py")]
    named = {
        (source.relative_to(ROOT), endpoint)
        for source in sources
        for endpoint in re.findall(r"url_for\(\s*['\"]([\w.]+)['\"]", source.read_text())
    }
    assert len(named) > 40
    assert sorted((str(s), e) for s, e in named if e not in app.view_functions) == []


def test_a_new_capabilitys_pages_are_its_folder_only(monkeypatch, tmp_path):
    """A capability brings a pages.py and its templates: the web UI serves them without an
    edit anywhere else (beside its line in the list)."""
    folder = tmp_path / "radiobox"
    (folder / "templates").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "capability.py").write_text(
        textwrap.dedent(
            """
            from appliance.capability import Capability

            class Radio(Capability):
                name = "radio"
            """
        )
    )
    (folder / "pages.py").write_text(
        textwrap.dedent(
            """
            from flask import Blueprint, render_template
            from flask_babel import lazy_gettext as _l

            from webui.nav import Link

            bp = Blueprint("radio", __name__, url_prefix="/radio", template_folder="templates")
            blueprints = (bp,)
            links = (Link("radio.index", _l("Radio"), 45),)

            @bp.route("/")
            def index():
                return render_template("radio.html", station="jazz")
            """
        )
    )
    (folder / "templates" / "radio.html").write_text(
        '{% extends "base.html" %}{% block main %}<p>On air: {{ station }}</p>{% endblock %}'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from radiobox.capability import Radio

    assert issubclass(Radio, Capability)
    monkeypatch.setattr(capabilities, "CAPABILITIES", (*capabilities.CAPABILITIES, Radio))
    from webui import create_app

    app = create_app(tmp_path / "no-agent.sock", secret_key=b"k" * 32, testing=True)
    page = app.test_client().get("/radio/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<p>On air: jazz</p>" in text and "Commonsbox" in text  # within the box's layout
    endpoints = [link.endpoint for link in app.extensions["menu"]]  # and in the menu
    assert endpoints.index("files.index") < endpoints.index("radio.index")
    assert endpoints.index("radio.index") < endpoints.index("account.index")


def test_the_wheel_carries_every_template():
    """The box's image installs the project's wheel (image/cbimage/build.py): each folder's
    templates must be package data, or its pages fail on the box and nowhere else."""
    import tomllib
    from fnmatch import fnmatch

    with open(ROOT / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)["tool"]["setuptools"]["package-data"]
    templates = [t for folder in template_folders() for t in folder.iterdir()]
    left_out = []
    for template in templates:
        package, _, inside = str(template.relative_to(ROOT)).partition("/")
        if not any(fnmatch(inside, pattern) for pattern in data.get(package, [])):
            left_out.append(str(template.relative_to(ROOT)))
    assert len(templates) > 20 and left_out == []
