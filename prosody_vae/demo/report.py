"""The demo's report: a Markdown page (for reading in a repository) and an HTML page (to listen).

Both are rendered from one list of blocks (:func:`_blocks`), so they say the same things: the
model's provenance and the vocoder that made the audio; per section what it shows and what to listen
for; the transfer-fidelity table (reference vs output F0 mean, F0 range, speaking rate and tempo, with
correlations across the transfers); per transfer the reference and its transcript, the output, what
was measured on it and the figures (mels, F0 contours, attention); then prior samples and the
interpolation. The HTML adds audio players beside the links; everything else is the same text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from prosody_vae.atomic import write_text_atomic
from prosody_vae.demo.run import DEFAULT_VOICE, QUANTITIES, VOICE_CLIPS, DemoResult, Rendition
from prosody_vae.demo.styles import STYLES

__all__ = ["write_report"]

# What the listener should expect of the sound itself, by vocoder (the report's audio paragraph).
_VOCODER_NOTES = {
    "WORLD": "WORLD builds the voice from the predicted F0, so the melody you hear is the model's; its "
    "fixed aperiodicity and mel-derived envelope make the voice buzzier than a recording: judge the "
    "prosody (pitch level, melody, tempo), not the voice quality.",
    "Griffin-Lim": "Griffin-Lim estimates the phase it does not know, so the outputs sound buzzy and "
    "metallic; judge the prosody (pitch level, melody, tempo), not the voice quality.",
}


# ------------------------------------------------------------------------------------ the content
# Each piece renders itself both ways; the two pages are the same list of pieces.
_e = html.escape


@dataclass(frozen=True)
class _Text:
    text: str

    def markdown(self) -> str:
        return self.text

    def html(self) -> str:
        return _e(self.text)


@dataclass(frozen=True)
class _Code:
    text: str

    def markdown(self) -> str:
        return f"`{self.text}`"

    def html(self) -> str:
        return f"<code>{_e(self.text)}</code>"


@dataclass(frozen=True)
class _Audio:
    path: str  # relative to the report

    def markdown(self) -> str:
        return f"[{self.path}]({self.path})"

    def html(self) -> str:  # a player, and the same link as in Markdown
        path = _e(self.path)
        return f'<audio controls preload="none" src="{path}"></audio> <a href="{path}">{path}</a>'


Inline = _Text | _Code | _Audio


def _line(*parts: str | _Code | _Audio) -> tuple[Inline, ...]:
    return tuple(_Text(p) if isinstance(p, str) else p for p in parts)


@dataclass(frozen=True)
class _Heading:
    level: int
    text: str

    def markdown(self) -> list[str]:
        return ["#" * self.level + " " + self.text]

    def html(self) -> list[str]:
        return [f"<h{self.level}>{_e(self.text)}</h{self.level}>"]


@dataclass(frozen=True)
class _Paragraph:
    parts: tuple[Inline, ...]

    def markdown(self) -> list[str]:
        return ["".join(p.markdown() for p in self.parts)]

    def html(self) -> list[str]:
        return ["<p>" + "".join(p.html() for p in self.parts) + "</p>"]


@dataclass(frozen=True)
class _Table:
    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> list[str]:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        return lines + ["| " + " | ".join(row) + " |" for row in self.rows]

    def html(self) -> list[str]:
        lines = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in self.header) + "</tr>"]
        lines += ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in self.rows]
        return lines + ["</table>"]


@dataclass(frozen=True)
class _Items:
    items: list[tuple[Inline, ...]]

    def markdown(self) -> list[str]:
        return ["- " + "".join(p.markdown() for p in item) for item in self.items]

    def html(self) -> list[str]:
        lines = ["<li>" + "".join(p.html() for p in item) + "</li>" for item in self.items]
        return ["<ul>", *lines, "</ul>"]


@dataclass(frozen=True)
class _Images:
    images: list[tuple[str, str]]  # (alt, path)

    def markdown(self) -> list[str]:
        return [f"![{alt}]({path})" for alt, path in self.images]

    def html(self) -> list[str]:
        return [f"<img src='{_e(path)}' alt='{_e(alt)}'>" for alt, path in self.images]


Block = _Heading | _Paragraph | _Table | _Items | _Images


def _value(measured: dict[str, float] | None, key: str) -> str:
    return "n/a" if not measured else format(measured[key], ".2f" if key == "tempo" else ".1f")


def _fidelity_table(result: DemoResult) -> _Table:
    references = {r.name: r for r in result.references}
    header = ["reference", "output"]
    for _, title in QUANTITIES:
        header += [f"{title} ref", f"{title} out"]
    rows = []
    for t in result.transfers:
        ref = references[t.source]
        row = [t.source, t.name]
        for key, _ in QUANTITIES:
            row += [_value(ref.measured, key), _value(t.measured, key)]
        rows.append(row)
    return _Table(header, rows)


def _correlation_line(result: DemoResult) -> str:
    parts = []
    for key, title in QUANTITIES:
        r = result.correlations.get(key)
        parts.append(f"{title}: r = {r:+.2f}" if r is not None else f"{title}: r = n/a")
    return "; ".join(parts)


def _measured_line(rendition: Rendition) -> str:
    text = (
        ", ".join(f"{title} {_value(rendition.measured, key)}" for key, title in QUANTITIES)
        if rendition.measured
        else "not measurable"
    )
    if not rendition.stopped:
        text += "; the stop token never fired, so the output was cut at the step limit"
    return text


def _describe(name: str) -> str:
    known = {s.name: s.description for s in STYLES}
    return known.get(name, name)


def _blocks(result: DemoResult) -> list[Block]:
    p = result.provenance
    blocks: list[Block] = [
        _Heading(1, "prosody_vae demo"),
        _Paragraph(
            _line(
                "Model: ",
                _Code(result.model),
                f" ({p.get('file_mib')} MiB; step {p.get('step')}; C = {p.get('capacity')} nats, "
                f"{p.get('latent_dim')}-dimensional z). Reference recordings were made with espeak-ng for "
                "this demo, on held-out sentences; the outputs speak other held-out sentences.",
            )
        ),
        _Paragraph(
            _line(
                f"Audio: every output was turned from a mel spectrogram into sound by {result.vocoder}. "
                + _VOCODER_NOTES["WORLD" if result.vocoder.startswith("WORLD") else "Griffin-Lim"],
            )
        ),
        _Heading(2, "Transfer fidelity"),
        _Paragraph(
            _line(
                "Does the output carry its reference's prosody? One row per transfer: the reference's "
                "measured F0 mean, F0 range and speaking rate beside the output's. Measured as the corpus "
                "labels are measured (WORLD F0 on the trimmed waveform; phones per second from espeak-ng's "
                "phonemes); the tempo is the pace relative to the sentence's own neutral duration (1 = "
                "espeak-ng's default pace for that sentence), which leaves out how long its sounds are "
                "by nature. Correlation across the transfers from the references in the demo's own "
                f"voice ({DEFAULT_VOICE}): " + _correlation_line(result) + ".",
            )
        ),
        _fidelity_table(result),
    ]
    if result.voice_means:
        voices = ", ".join(f"{voice} {hz:.0f} Hz" for voice, hz in result.voice_means.items())
        blocks.append(
            _Paragraph(
                _line(
                    "References in a voice the model never heard (the new_voice rows) sit in that voice's "
                    "own register, so their F0 is not compared with the output's in Hz: the model was told "
                    f"the voice's mean F0, measured on {VOICE_CLIPS} other recordings of it ({voices}; "
                    "references/voices/), and renders the reference's pitch relative to that mean in its "
                    "own voice: a low reference for its voice should come out low for the model's voice, "
                    "a high one high.",
                )
            )
        )
    if result.transfers:
        blocks += [
            _Heading(2, "Transfers"),
            _Paragraph(
                _line(
                    "Each reference's prosody (the posterior mean of z) spoken on a sentence the reference "
                    "did not say. What to listen for: the output's pitch level and tempo follow the "
                    "reference (low against high pitch, slow against fast), while the words are the new "
                    "sentence's. The figures show the reference's mel spectrogram above the output's, both "
                    "F0 contours overlaid, and the attention alignment (a clean diagonal: every word spoken "
                    "once, in order).",
                )
            ),
        ]
    references = {r.name: r for r in result.references}
    for t in result.transfers:
        reference = references[t.source]
        blocks += [
            _Heading(3, f'{t.source} -> "{t.text}"'),
            _Paragraph(
                _line(
                    f'Reference ({_describe(t.source)}, "{reference.text}"): ',
                    _Audio(reference.wav),
                    "; output: ",
                    _Audio(t.wav),
                    f" ({_measured_line(t)})",
                )
            ),
        ]
        if t.figures:
            blocks.append(_Images(list(t.figures.items())))
    if result.samples:
        blocks += [
            _Heading(2, "Prior samples"),
            _Paragraph(
                _line(
                    f'"{result.samples[0].text}" with z drawn from the prior N(0, I), no reference. What to '
                    "listen for: pitch level and tempo that change from one sample to the next; the "
                    "model invents the prosody.",
                )
            ),
            _Items([_line(_Audio(s.wav), f": {_measured_line(s)}") for s in result.samples]),
        ]
        if "f0" in result.samples[0].figures:
            blocks.append(_Images([("prior samples F0", result.samples[0].figures["f0"])]))
    if result.interpolation:
        first, second = (r.name for r in result.references[:2])
        blocks += [
            _Heading(2, "Interpolation"),
            _Paragraph(
                _line(
                    f'"{result.interpolation[0].text}", spherical interpolation from the {first} '
                    f"reference's embedding to the {second} reference's, ends included. What to listen "
                    f"for: the prosody moving step by step from {_describe(first)} to {_describe(second)}, "
                    "with no jump.",
                )
            ),
            _Items([_line(_Audio(s.wav), f": {_measured_line(s)}") for s in result.interpolation]),
        ]
        if "f0" in result.interpolation[0].figures:
            blocks.append(_Images([("interpolation F0", result.interpolation[0].figures["f0"])]))
    return blocks


# ------------------------------------------------------------------------------------ pages
_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}img{max-width:49%}"
    "audio{vertical-align:middle;height:2em}"
)


def _markdown(blocks: list[Block]) -> str:
    return "\n\n".join("\n".join(block.markdown()) for block in blocks)


def _html(blocks: list[Block]) -> str:
    head = [
        "<!doctype html><html><head><meta charset='utf-8'><title>prosody_vae demo</title>",
        f"<style>{_STYLE}</style></head><body>",
    ]
    return "\n".join(head + [line for block in blocks for line in block.html()] + ["</body></html>"])


def write_report(result: DemoResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` (paths inside are relative)."""
    out_dir = Path(out_dir)
    blocks = _blocks(result)
    markdown, page = out_dir / "report.md", out_dir / "report.html"
    write_text_atomic(markdown, _markdown(blocks) + "\n")
    write_text_atomic(page, _html(blocks) + "\n")
    return markdown, page
