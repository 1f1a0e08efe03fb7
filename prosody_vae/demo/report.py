"""The demo's report: a Markdown page (for reading in a repository) and an HTML page (to listen).

Both show the same content: the model's provenance, the transfer-fidelity table (reference vs output
F0 mean, F0 range and speaking rate, with correlations across the transfers), and per reference the
mel spectrograms, F0 contours and attention alignment; then prior samples and the interpolation.
"""

from __future__ import annotations

import html
from pathlib import Path

from prosody_vae.demo.run import QUANTITIES, DemoResult, Rendition

__all__ = ["write_report"]


def _value(measured: dict[str, float] | None, key: str) -> str:
    return "n/a" if not measured else f"{measured[key]:.1f}"


def _fidelity_rows(result: DemoResult) -> list[list[str]]:
    references = {r.name: r for r in result.references}
    rows = []
    for t in result.transfers:
        ref = references[t.source]
        row = [t.source, t.name]
        for key, _ in QUANTITIES:
            row += [_value(ref.measured, key), _value(t.measured, key)]
        rows.append(row)
    return rows


def _header() -> list[str]:
    header = ["reference", "output"]
    for _, title in QUANTITIES:
        header += [f"{title} ref", f"{title} out"]
    return header


def _correlation_line(result: DemoResult) -> str:
    parts = []
    for key, title in QUANTITIES:
        r = result.correlations.get(key)
        parts.append(f"{title}: r = {r:+.2f}" if r is not None else f"{title}: r = n/a")
    return "; ".join(parts)


def _measured_line(rendition: Rendition) -> str:
    if not rendition.measured:
        return "not measurable"
    return ", ".join(f"{title} {_value(rendition.measured, key)}" for key, title in QUANTITIES)


def _markdown(result: DemoResult) -> str:
    p = result.provenance
    lines = [
        "# prosody_vae demo",
        "",
        f"Model: `{result.model}` ({p.get('file_mib')} MiB; step {p.get('step')}; C = {p.get('capacity')} nats, "
        f"{p.get('latent_dim')}-dimensional z). Reference recordings were made with espeak-ng for this demo, "
        "on held-out sentences; the outputs speak other held-out sentences.",
        "",
        "## Transfer fidelity",
        "",
        "Measured as the corpus labels are measured (WORLD F0 on the trimmed waveform; phones per second "
        "from espeak-ng's phonemes). Correlation across all transfers: " + _correlation_line(result) + ".",
        "",
        "| " + " | ".join(_header()) + " |",
        "|" + "---|" * len(_header()),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _fidelity_rows(result)]
    lines += ["", "## Transfers", ""]
    for t in result.transfers:
        if not t.figures:
            continue
        lines += [
            f'### {t.source} -> "{t.text}"',
            "",
            f"Reference: [{t.reference}]({t.reference}); output: [{t.wav}]({t.wav}) ({_measured_line(t)})",
            "",
        ]
        lines += [f"![{key}]({path})" for key, path in t.figures.items()] + [""]
    if result.samples:
        lines += ["## Prior samples", "", f'"{result.samples[0].text}" with z drawn from the prior:', ""]
        lines += [f"- [{s.wav}]({s.wav}): {_measured_line(s)}" for s in result.samples]
        if "f0" in result.samples[0].figures:
            lines += ["", f"![prior samples F0]({result.samples[0].figures['f0']})"]
        lines.append("")
    if result.interpolation:
        lines += [
            "## Interpolation",
            "",
            f'"{result.interpolation[0].text}", spherical interpolation '
            "between the first two references' embeddings:",
            "",
        ]
        lines += [f"- [{s.wav}]({s.wav}): {_measured_line(s)}" for s in result.interpolation]
        if "f0" in result.interpolation[0].figures:
            lines += ["", f"![interpolation F0]({result.interpolation[0].figures['f0']})"]
        lines.append("")
    return "\n".join(lines)


def _audio(path: str) -> str:
    return f'<audio controls preload="none" src="{html.escape(path)}"></audio>'


def _html(result: DemoResult) -> str:
    e = html.escape
    p = result.provenance
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>prosody_vae demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:49%}</style></head><body>",
        "<h1>prosody_vae demo</h1>",
        f"<p>Model <code>{e(result.model)}</code>: step {e(str(p.get('step')))}, C = {e(str(p.get('capacity')))} nats.</p>",
        "<h2>Transfer fidelity</h2>",
        f"<p>Correlation across all transfers: {e(_correlation_line(result))}.</p>",
        "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in _header()) + "</tr>",
    ]
    out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in _fidelity_rows(result)]
    out.append("</table><h2>Transfers</h2>")
    references = {r.name: r for r in result.references}
    for t in result.transfers:
        out.append(
            f"<h3>{e(t.source)} &rarr; &ldquo;{e(t.text)}&rdquo;</h3><p>reference ({e(references[t.source].text)}) "
            f"{_audio(t.reference)} output {_audio(t.wav)}</p>"
        )
        out += [f"<img src='{e(path)}' alt='{e(key)}'>" for key, path in t.figures.items()]
    for title, items in (("Prior samples", result.samples), ("Interpolation", result.interpolation)):
        if not items:
            continue
        out.append(f"<h2>{title}</h2><p>&ldquo;{e(items[0].text)}&rdquo;</p><ul>")
        out += [f"<li>{e(s.name)} {_audio(s.wav)} {e(_measured_line(s))}</li>" for s in items]
        out.append("</ul>")
        if "f0" in items[0].figures:
            out.append(f"<img src='{e(items[0].figures['f0'])}' alt='F0'>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(result: DemoResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` (paths inside are relative)."""
    out_dir = Path(out_dir)
    markdown, page = out_dir / "report.md", out_dir / "report.html"
    markdown.write_text(_markdown(result) + "\n")
    page.write_text(_html(result) + "\n")
    return markdown, page
