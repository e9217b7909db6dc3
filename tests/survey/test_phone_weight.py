"""Page weight of the bundled citizen questionnaire's blank page: what every resident downloads first."""
from __future__ import annotations

import gzip
import re


def test_the_blank_citizen_page_stays_light(client, city, capsys):
    html = client.get(f"/s/{city['A1']}").get_data()
    squeezed = len(gzip.compress(html, 9))
    with capsys.disabled():
        print(f"\nblank citizen page: {len(html)} bytes, {squeezed} gzipped")
    assert len(html) < 24_000 and squeezed < 3_200
    assert re.findall(rb'<script src="([^"]+)"', html) in ([b"/static/form.js"], [b"/static/expr.js", b"/static/form.js"])
