#!/usr/bin/env python3
"""The hierarchical capacity grid: what transfer via z_s and via z_p carry, and what sampling varies.

For each checkpoint (one grid point (C_s, C_p) each), ``--n`` test-split references spoken by training
voices, each transferred into its own voice (the posterior and the decoder read that voice) speaking a
*different* held-out sentence:

* **via z_p**: the posterior mean of z_p, i.e. everything the reference gives (up to C_s + C_p nats);
* **via z_s**: the posterior mean of the high-level z_s, and ``--samples`` draws of z_p from
  p(z_p | z_s) (temperature 1); each draw is one output;
* **prior**: ``--samples`` draws of (z_s, z_p) from the prior, the baseline.

Similarity to the reference: speaker-normalised Pearson r over outputs for F0 level, F0 spread and
speaking rate (:mod:`prosody_vae.evaluation.speakers`; every draw is one pair, so r is the similarity
of one draw). Variation between draws that share z_s: the standard deviation over a reference's draws
of the F0 level (semitones) and of the log speaking rate (in %), averaged over references; under the
prior the same over draws for one sentence. Every output and reference is measured by one analysis
(:func:`prosody_vae.data.espeak.measure_prosody`, Harvest).

The paper's predictions (docs/hierarchical.md): raising C_s raises similarity via z_s; raising C_p
raises the variation between draws that share z_s; via z_p similarity grows with C_s + C_p.

    .venv/bin/python recipes/hierarchical_eval.py --corpus data/espeak_multivoice/prepared \
        --checkpoints exp/hier_5_10/checkpoints/best.pt exp/hier_10_10/checkpoints/best.pt \
        --n 16 --samples 4 --out exp/hierarchical_grid
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from cross_voice_eval import _fmt, _output_stats, _pick, _stats  # a recipe beside this one

from prosody_vae.atomic import write_text_atomic
from prosody_vae.audio.vocoders import load_vocoder
from prosody_vae.checkpoint import load_checkpoint
from prosody_vae.data.manifest import read_manifest
from prosody_vae.evaluation.speakers import NORMALISED_QUANTITIES, CrossVoiceItem, cross_voice_correlations
from prosody_vae.inference.synthesizer import Synthesizer

MODES = ("via z_p", "via z_s", "prior")


def _spread(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.std(finite, ddof=1)) if len(finite) >= 2 else math.nan


def _draw_variation(draws: list[dict[str, float]]) -> tuple[float, float]:
    """Standard deviation over draws of F0 level (semitones) and log rate (%)."""
    level = [12 * math.log2(d["f0_mean_hz"]) if d["f0_mean_hz"] > 0 else math.nan for d in draws]
    rate = [100 * math.log(d["speaking_rate"]) if d["speaking_rate"] > 0 else math.nan for d in draws]
    return _spread(level), _spread(rate)


def _rates(checkpoint: Path) -> dict[str, float]:
    """The last validation record's rates and the configured capacities of ``checkpoint``'s run."""
    state = load_checkpoint(checkpoint)
    capacity = state["config"]["capacity"]
    out = {"C_s": float(capacity["high_capacity"]), "C_p": float(capacity["capacity"])}
    log = checkpoint.parents[1] / "log.jsonl"
    if log.is_file():
        valid = [r for r in map(json.loads, log.read_text().splitlines()) if "valid/kl" in r]
        if valid:
            out["kl_p"] = float(valid[-1]["valid/kl"])
            out["kl_s"] = float(valid[-1].get("valid/kl_high", math.nan))
            out["step"] = int(valid[-1]["step"])
    return out


def evaluate(checkpoint: Path, corpus: Path, n: int, samples: int, seed: int) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    synth = Synthesizer.from_checkpoint(checkpoint)
    if not synth.hierarchical:
        raise SystemExit(f"{checkpoint}: not a hierarchical model")
    vocoder = load_vocoder(None, synth.audio, default=synth.default_vocoder)
    test = read_manifest(corpus / "splits" / "test.jsonl")
    sentences = sorted({u.text for u in test if u.labels.get("held_out_text") == 1.0})
    known = [
        u
        for u in test
        if u.labels.get("held_out_voice") != 1.0 and (u.speaker in synth.speakers or not synth.speakers)
    ]
    voices = sorted({str(u.speaker) for u in known})
    references = _pick(known, [str(v) for v in rng.permutation(voices)[:4]], n, rng)

    items: dict[str, list[CrossVoiceItem]] = {m: [] for m in MODES}
    variation: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    for ref in references:
        voice = ref.speaker if synth.speakers else None
        ref_stats = _stats(ref.audio, ref.text, synth)
        text = next(t for t in rng.permutation(sentences) if t != ref.text)
        outputs = {
            "via z_p": [
                synth.transfer(
                    text, ref.audio, reference_text=ref.text, speaker=voice, reference_speaker=voice
                )
            ],
            "via z_s": [
                synth.transfer(
                    text, ref.audio, reference_text=ref.text, speaker=voice, reference_speaker=voice, via="zs"
                )
                for _ in range(samples)
            ],
            "prior": synth.sample(text, samples, speaker=voice),
        }
        for mode, results in outputs.items():
            draws = [_output_stats(synth, vocoder, r, text) for r in results]
            for d in draws:
                if not d.get("failed"):
                    items[mode].append(
                        CrossVoiceItem(str(ref.audio), str(ref.speaker), str(ref.speaker), ref_stats, d)
                    )
            if len(draws) > 1:
                variation[mode].append(_draw_variation(draws))
    result = {"checkpoint": str(checkpoint), **_rates(checkpoint), "modes": {}}
    for mode in MODES:
        corr = cross_voice_correlations(items[mode]) if len(items[mode]) >= 3 else None
        level_sd, rate_sd = (
            np.nanmean([v[i] for v in variation[mode]]) if variation[mode] else math.nan for i in (0, 1)
        )
        result["modes"][mode] = {
            "n": len(items[mode]),
            "r": {k: corr.pooled[k].r for k, *_ in NORMALISED_QUANTITIES} if corr else None,
            "level_sd_st": float(level_sd),
            "rate_sd_pct": float(rate_sd),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    parser.add_argument("--corpus", type=Path, default=Path("data/espeak_multivoice/prepared"))
    parser.add_argument("--n", type=int, default=16, help="references")
    parser.add_argument("--samples", type=int, default=4, help="draws of z_p per reference (via z_s, prior)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("exp/hierarchical_grid"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*did not stop within max_steps")
    started = time.time()
    results = []
    for checkpoint in args.checkpoints:
        results.append(evaluate(checkpoint, args.corpus, args.n, args.samples, args.seed))
        print(f"{checkpoint} done, {time.time() - started:.0f} s", flush=True)

    labels = [label for _, label, _, _ in NORMALISED_QUANTITIES]
    header = (
        "| C_s | C_p | KL_s | KL_p | mode | "
        + " | ".join(f"{label} r" for label in labels)
        + " | draw s.d. F0 level (st) | draw s.d. rate (%) |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for res in results:
        for mode in MODES:
            m = res["modes"][mode]
            cells = [_fmt(m["r"][k]) if m["r"] else "–" for k, *_ in NORMALISED_QUANTITIES]
            lines.append(
                f"| {res['C_s']:g} | {res['C_p']:g} | {_fmt(res.get('kl_s', math.nan), '.1f')} | "
                f"{_fmt(res.get('kl_p', math.nan), '.1f')} | {mode} | "
                + " | ".join(cells)
                + f" | {_fmt(m['level_sd_st'], '.2f')} | {_fmt(m['rate_sd_pct'], '.1f')} |"
            )
    table = f"{args.n} references, {args.samples} draws each, seed {args.seed}.\n\n" + "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "summary.json", json.dumps(results, indent=2, default=float) + "\n")
    write_text_atomic(args.out / "table.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
