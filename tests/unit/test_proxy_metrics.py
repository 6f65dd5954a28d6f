"""Prometheus text rendering of the proxy's metrics."""

from __future__ import annotations

from rhizome.api.exposition import Sample, render, sample
from rhizome.proxy.metrics import per_port


def test_samples_render_in_the_text_exposition_format():
    text = render(
        [
            sample("rhizome_proxy_generation", "gauge", "Applied generation.", 7),
            per_port("rhizome_proxy_connections", "gauge", "Open.", {False: 3, True: 0}),
            Sample("odd", "counter", "Escaping.", (({"reason": 'a "b"\\\n'}, 1.5),)),
        ]
    )
    assert text.splitlines() == [
        "# HELP rhizome_proxy_generation Applied generation.",
        "# TYPE rhizome_proxy_generation gauge",
        "rhizome_proxy_generation 7",
        "# HELP rhizome_proxy_connections Open.",
        "# TYPE rhizome_proxy_connections gauge",
        'rhizome_proxy_connections{port="read_write"} 3',
        'rhizome_proxy_connections{port="read_only"} 0',
        "# HELP odd Escaping.",
        "# TYPE odd counter",
        'odd{reason="a \\"b\\"\\\\\\n"} 1.5',
    ]
    assert text.endswith("\n")
