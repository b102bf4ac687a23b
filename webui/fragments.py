"""``{% cache KEY, ... %}...{% endcache %}``: a part of every page that is the same for
everyone who reads the page in the same language with the same KEY (the navigation for a
role, the list of languages), rendered once per process and key instead of on every page.

What is inside may depend only on the language, the app's own paths and the KEY values:
never on who is logged in beyond them (no name, no CSRF token, no request path). It is
Jinja's fragment cache example, keyed by place, language and mount point; the few dozen
fragments (places x languages x roles) are kept while the process runs.
"""

from flask import request
from flask_babel import get_locale
from jinja2 import nodes
from jinja2.ext import Extension
from markupsafe import Markup

LIMIT = 1024  # fragments kept; far more than places x languages x roles


class FragmentCache(Extension):
    tags = {"cache"}

    def __init__(self, environment):
        super().__init__(environment)
        self.fragments: dict[tuple, Markup] = {}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        key: list[nodes.Expr] = [nodes.Const(f"{parser.name}:{lineno}")]  # its place
        while parser.stream.current.type != "block_end":
            if len(key) > 1:
                parser.stream.expect("comma")
            key.append(parser.parse_expression())
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        call = self.call_method("_fragment", [nodes.List(key)])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _fragment(self, key: list, caller) -> Markup:
        full = (request.script_root, str(get_locale()), *key)
        found = self.fragments.get(full)
        if found is None:
            if len(self.fragments) >= LIMIT:
                self.fragments.clear()
            found = self.fragments[full] = Markup(caller())
        return found
