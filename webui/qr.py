"""QR codes as inline SVG, drawn here: segno's markup around text we give it (the
title escaped by segno), so no markup from anyone else reaches the page."""

import io

from markupsafe import Markup

from appliance.vpn.export import qr


def qr_svg(text: str, title: str) -> Markup:
    out = io.BytesIO()
    # A viewBox and no fixed size: the page's style sets how large it is drawn.
    qr(text).save(
        out, kind="svg", scale=4, xmldecl=False, svgns=True, title=str(title), omitsize=True
    )
    return Markup(out.getvalue().decode())
