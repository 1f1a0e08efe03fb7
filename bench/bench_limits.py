#!/usr/bin/env python
"""Peak memory and wall time of the commands on long input: long texts, long references, evaluation.

Each measurement runs one ``prosody-vae`` command in a fresh process (the shipped model, one torch
thread) that reports its own peak resident memory (``resource.getrusage``) and wall time. Inputs are
built here: texts from the built-in corpus grammar, a reference recording from espeak-ng repeated to
the wanted length. Results go to stdout as a Markdown table (and to ``--json``).

    .venv/bin/python bench/bench_limits.py --json /tmp/bench_limits.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

_RUN = """
import json, resource, sys, time
start = time.perf_counter()
from prosody_vae.cli import main
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "seconds": seconds, "peak_mib": peak_kib / 1024}), file=sys.stderr)
"""


def measure(argv: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", _RUN, *argv], capture_output=True, text=True, check=False)
    return json.loads(done.stderr.strip().splitlines()[-1])


def corpus_text(characters: int) -> str:
    from prosody_vae.data.espeak.grammar import generate_sentences

    text = ""
    for sentence in generate_sentences(2000, seed=7):
        if len(text) + len(sentence) + 1 > characters:
            return text
        text = f"{text} {sentence}" if text else sentence
    return text


def reference(folder: Path, seconds: float) -> Path:
    """espeak-ng reading corpus sentences, repeated to ``seconds``; its first sentence as transcript."""
    spoken = folder / "spoken.wav"
    if not spoken.exists():
        subprocess.run(["espeak-ng", "-w", str(spoken), corpus_text(2000)], check=True)
    wav, rate = sf.read(spoken, dtype="float32")
    samples = int(seconds * rate)
    path = folder / f"reference_{seconds:g}s.wav"
    sf.write(path, np.tile(wav, samples // len(wav) + 1)[:samples], rate, subtype="PCM_16")
    path.with_suffix(".txt").write_text(corpus_text(60) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", default="500,1000,2500,5000", help="text lengths, characters")
    parser.add_argument("--references", default="5,20,60,600", help="reference lengths, seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        short = reference(work, 5)
        common = ["--threads", "1", "-q"]
        for n in (int(x) for x in args.texts.split(",")):
            text = corpus_text(n)
            result = measure(
                ["transfer", "--reference", str(short), "--text", text, "--out", str(work / "t.wav"), *common]
            )
            audio = sf.info(str(work / "t.wav")).duration if result["code"] == 0 else float("nan")
            rows.append({"what": f"transfer, text of {len(text)} characters", "audio_s": audio, **result})
        for seconds in (float(x) for x in args.references.split(",")):
            ref = reference(work, seconds)
            out = work / "r.wav"
            result = measure(
                [
                    "transfer",
                    "--reference",
                    str(ref),
                    "--text",
                    "The lantern was red.",
                    "--out",
                    str(out),
                    *common,
                ]
            )
            rows.append({"what": f"transfer, reference of {seconds:g} s", **result})
        wav, rate = sf.read(work / "t.wav", dtype="float32")  # the longest text's output
        for seconds in (20.0, 600.0):  # the longest pair scored, and one skipped by its header
            ref_dir, out_dir = work / f"ref{seconds:g}", work / f"out{seconds:g}"
            ref_dir.mkdir(), out_dir.mkdir()
            reference(work, seconds).rename(ref_dir / "a.wav")
            sf.write(out_dir / "a.wav", wav[: int(min(seconds, 19.9) * rate)], rate)
            reference(work, 5).rename(ref_dir / "b.wav")  # and an ordinary pair beside it
            sf.write(out_dir / "b.wav", wav[: 3 * rate], rate)
            argv = ["evaluate", "--ref-dir", str(ref_dir), "--out-dir", str(out_dir), "--num-workers", "0"]
            rows.append({"what": f"evaluate, reference of {seconds:g} s", **measure([*argv, *common])})
    print("| measurement | exit | wall s | peak MiB |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['what']} | {row['code']} | {row['seconds']:.1f} | {row['peak_mib']:.0f} |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
