#!/usr/bin/env python3
"""Merge built corpora (``make-corpus`` outputs) into one, ready for ``prepare --corpus manifest``.

Why: the multi-voice corpus speaks a stylised per-word contour in 26 voices, the default corpus
espeak-ng's own tune in one voice with questions ending in a rise; a model that is to serve both
(transfer from any voice, and questions that rise from the text alone) trains on both. Each input
keeps its audio where it is; the merged folder holds:

- ``manifest.jsonl``: every utterance of every input, its id prefixed with ``<prefix>_`` (the inputs
  number their utterances alike), audio paths made absolute, speaker and labels unchanged;
- ``held_out_texts.txt``: the union of the inputs' lists (every text held out in any input goes to the
  test split, so a sentence held out of one is not trained on through another);
- ``f0/<prefix>_<id>.npz``: links to the inputs' stored F0 tracks, which ``prepare`` reuses after
  checking the audio's hash (:mod:`prosody_vae.data.f0_store`).

Idempotent: a second run with the same inputs rewrites the same files. A manifest line that does not
parse stops the merge naming the file and line.

    .venv/bin/python recipes/merge_corpora.py --out data/espeak_mixed/corpus \
        data/espeak_multivoice/corpus:mv data/espeak_prosody/corpus:q
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from prosody_vae.atomic import write_text_atomic


def _inputs(specs: list[str]) -> list[tuple[Path, str]]:
    pairs = []
    for spec in specs:
        folder, sep, prefix = spec.rpartition(":")
        if not sep or not folder or not prefix.isidentifier():
            raise SystemExit(f"{spec}: give each input as FOLDER:PREFIX (a prefix of letters, digits, _)")
        path = Path(folder)
        if not (path / "manifest.jsonl").is_file():
            raise SystemExit(f"{path}: no manifest.jsonl (is it a make-corpus output folder?)")
        pairs.append((path, prefix))
    if len({prefix for _, prefix in pairs}) != len(pairs):
        raise SystemExit("each input needs its own prefix")
    return pairs


def merge(inputs: list[tuple[Path, str]], out: Path) -> dict[str, int]:
    """Write the merged manifest, held-out list and F0 links into ``out``; returns counts per prefix."""
    (out / "f0").mkdir(parents=True, exist_ok=True)
    lines, held_out, counts = [], set(), {}
    for folder, prefix in inputs:
        manifest = folder / "manifest.jsonl"
        n = 0
        for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                old_id = row["id"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise SystemExit(f"{manifest}:{number}: not a manifest line ({error})") from None
            row["id"] = f"{prefix}_{old_id}"
            audio = Path(row["audio"])
            row["audio"] = str(audio if audio.is_absolute() else (folder / audio).resolve())
            lines.append(json.dumps(row, ensure_ascii=False))
            track = folder / "f0" / f"{old_id}.npz"
            link = out / "f0" / f"{row['id']}.npz"
            if track.is_file() and not os.path.lexists(link):
                os.symlink(track.resolve(), link)
            n += 1
        counts[prefix] = n
        texts = folder / "held_out_texts.txt"
        if texts.is_file():
            held_out |= {t.strip() for t in texts.read_text(encoding="utf-8").splitlines() if t.strip()}
    write_text_atomic(out / "manifest.jsonl", "\n".join(lines) + "\n")
    write_text_atomic(out / "held_out_texts.txt", "".join(f"{t}\n" for t in sorted(held_out)))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="built corpus folders, each as FOLDER:PREFIX")
    parser.add_argument("--out", type=Path, required=True, help="merged corpus folder")
    args = parser.parse_args(argv)
    counts = merge(_inputs(args.inputs), args.out)
    total = sum(counts.values())
    parts = ", ".join(f"{prefix} {n}" for prefix, n in counts.items())
    print(f"{args.out / 'manifest.jsonl'}: {total} utterances ({parts})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
