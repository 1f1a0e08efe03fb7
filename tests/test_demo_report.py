"""The demo's HTML report says everything its Markdown report says (built from the committed run)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from prosody_vae.demo.report import write_report
from prosody_vae.demo.run import DemoResult, Rendition

SUMMARY = Path(__file__).resolve().parents[1] / "docs" / "demo" / "summary.json"


def _result(**changes) -> DemoResult:
    """The committed demo run, as :func:`run_demo` returned it."""
    raw = json.loads(SUMMARY.read_text())
    for group in ("references", "transfers", "samples", "interpolation"):
        raw[group] = [Rendition(**item) for item in raw[group]]
    return DemoResult(**{**raw, **changes})


def _words(text: str) -> str:
    return " ".join(text.split())


def _markdown_text(markdown: str) -> tuple[list[str], set[str]]:
    """Plain text per line, and every link and image target."""
    targets = set(re.findall(r"\]\(([^)]+)\)", markdown))
    lines = []
    for line in markdown.splitlines():
        if re.fullmatch(r"\|(---\|)+", line) or not line.strip():
            continue
        line = re.sub(r"!\[[^\]]*\]\([^)]+\)", "", line)  # images: compared as targets
        line = re.sub(r"\[([^\]]*)\]\([^)]+\)", r"\1", line)  # links: their text
        line = re.sub(r"^(#+|-) ", "", line).replace("`", "").replace("|", " ")
        if line.strip():
            lines.append(_words(line))
    return lines, targets


def _html_text(page: str) -> tuple[str, set[str]]:
    targets = set(re.findall(r"""(?:src|href)=["']([^"']+)["']""", page))
    body = re.sub(r"<(style|title)>.*?</\1>", " ", page, flags=re.DOTALL)
    body = re.sub(r"</?(a|code)\b[^>]*>", "", body)  # inline: no word break
    return _words(html.unescape(re.sub(r"<[^>]+>", " ", body))), {html.unescape(t) for t in targets}


def test_html_report_has_everything_the_markdown_has(tmp_path):
    # a vocoder other than the default, so that the test sees it carried through
    markdown_path, html_path = write_report(_result(vocoder="Griffin-Lim (7 iterations)"), tmp_path)
    lines, md_targets = _markdown_text(markdown_path.read_text())
    page_text, page_targets = _html_text(html_path.read_text())
    missing = [line for line in lines if line not in page_text]
    assert missing == [], f"in report.md but not in report.html: {missing[:3]}"
    assert md_targets and md_targets <= page_targets, md_targets - page_targets
    # named on both pages: the vocoder, what each section shows and what to listen for; the audio
    # players are the HTML's own
    for page in (markdown_path.read_text(), page_text):
        assert "Griffin-Lim (7 iterations)" in page
        assert page.count("What to listen for") >= 3
    assert html_path.read_text().count("<audio") >= len(_result().transfers) * 2
    # the comparison saw the whole page: every table row and every transfer's paragraph
    assert len(lines) > 3 * len(_result().transfers)


def test_committed_report_is_what_the_code_writes(tmp_path):
    # docs/demo/report.{md,html} are the demo's output: rebuilt from its summary.json, they are unchanged
    result = _result()
    markdown, page = write_report(result, tmp_path)
    assert markdown.read_text() == SUMMARY.with_name("report.md").read_text()
    assert page.read_text() == SUMMARY.with_name("report.html").read_text()
    # the references carry their transcripts, as the demo writes them
    for reference in result.references:
        transcript = (SUMMARY.parent / reference.wav).with_suffix(".txt")
        assert transcript.read_text().strip() == reference.text
