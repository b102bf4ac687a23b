"""Flask's Jinja environment, with each escaped value written out as plain text.

Jinja escapes every ``{{ value }}`` with markupsafe's ``escape``, which returns a Markup
object; on its way out of a page that object is only joined into the page's text. With
markupsafe 3, building it is most of the cost of a value: the device list writes some
350, and they were a quarter of its rendering. Here the same escaping (markupsafe's own,
``__html__`` honoured, nothing marked safe that was not) gives a str instead. Where a
Markup is still wanted (a macro's or ``{% set %}`` block's result, ``|safe``), Jinja
makes it as before. Without markupsafe 3's inner escape, values are escaped as before.
"""

from typing import Any

from flask.templating import Environment
from jinja2.compiler import CodeGenerator
from markupsafe import escape

try:
    from markupsafe import _escape_inner  # markupsafe >= 3: the escaping, without a Markup
except ImportError:  # older markupsafe (Debian 13 has 2.1): its escape, Markup and all
    _escape_inner = None  # type: ignore[assignment]


def html_text(value: Any) -> str:
    """escape(value), as the text it is."""
    if _escape_inner is None:
        return escape(value)
    if type(value) is str:
        return _escape_inner(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return _escape_inner(str(value))


class _PlainOutput(CodeGenerator):
    """Writes ``environment.html_text(value)`` where Jinja writes ``escape(value)`` for a
    value on its way out (not where autoescaping can change inside a template)."""

    def _output_child_pre(self, node, frame, finalize) -> None:
        if frame.eval_ctx.volatile or not frame.eval_ctx.autoescape:
            super()._output_child_pre(node, frame, finalize)
            return
        self.write("environment.html_text(")
        if finalize.src is not None:
            self.write(finalize.src)


class PageEnvironment(Environment):
    code_generator_class = _PlainOutput
    html_text = staticmethod(html_text)
