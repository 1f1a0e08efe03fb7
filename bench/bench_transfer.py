"""Real-time factor of ``transfer`` on CPU: acoustic model and vocoder timed separately.

One transfer = read the reference and encode it to z (load, resample/trim, log-mel, reference
encoder + posterior), autoregressive decoding of the text with z (Tacotron 2 with the postnet), and
Griffin-Lim. Each part is timed over ``--repeats`` runs after one warm-up; the real-time factor is
the median time divided by the seconds of speech produced (RTF < 1: faster than real time). The
seed is reset before every run, so every repeat decodes the same number of frames.

    .venv/bin/python bench/bench_transfer.py --threads 1

Uses the trained built-in-corpus checkpoint when present, else a randomly initialised model built
from the CPU recipe's config (its output length is whatever its untrained stop token gives:
timings per second of output stay comparable, durations do not).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from prosody_vae.audio.vocoders import GriffinLimVocoder
from prosody_vae.config import load_config
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer
from prosody_vae.text import build_tokenizer
from prosody_vae.tts.model import build_model

CHECKPOINT = Path("exp/espeak_cpu/checkpoints/step_2461.pt")
CONFIG = Path("egs/espeak_prosody/conf/train_cpu.yaml")
TEXT = "The gardener borrowed a white candle from the old bakery on Sunday morning."


def _synthesizer(checkpoint: Path, config: Path) -> tuple[Synthesizer, str]:
    if checkpoint.is_file():
        return Synthesizer.from_checkpoint(checkpoint), str(checkpoint)
    cfg = load_config(config)
    tokenizer = build_tokenizer(cfg.text.tokenizer)
    model = build_model(cfg, n_symbols=tokenizer.vocab_size)
    synth = Synthesizer(model=model, tokenizer=tokenizer, config=cfg, speakers=["default"])
    return synth, f"random model from {config}"


def _reference(synth: Synthesizer, given: Path | None) -> tuple[object, str | None, str]:
    """(reference, its transcript, description): the given file, a held-out corpus file, or a tone."""
    if given is not None:
        return given, None, str(given)
    split = Path(synth.config.data.root) / "splits" / "test.jsonl"
    if split.is_file():
        utt = read_manifest(split)[0]
        return utt.audio, utt.text, f"{utt.id} ({utt.duration:.2f} s, held out)"
    # no corpus: a 2 s harmonic tone with a falling pitch stands in for speech
    t = np.arange(2 * synth.audio.sample_rate) / synth.audio.sample_rate
    f0 = 160 - 30 * t
    phase = 2 * np.pi * np.cumsum(f0) / synth.audio.sample_rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 8)).astype(np.float32) * 0.3
    return tone, "A falling tone.", "synthetic 2 s harmonic tone"


def _median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--config", type=Path, default=CONFIG, help="config of the fallback random model")
    parser.add_argument("--reference", type=Path, default=None)
    parser.add_argument("--reference-text", default=None)
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gl-iters", type=int, default=32)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument(
        "--decoder-timing",
        action="store_true",
        help="leave out the model's length model (its resampling is timed within decoding otherwise)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    synth, model_name = _synthesizer(args.checkpoint, args.config)
    synth.length_model = not args.decoder_timing
    reference, ref_text, ref_name = _reference(synth, args.reference)
    ref_text = args.reference_text or ref_text
    vocoder = GriffinLimVocoder(synth.audio, n_iter=args.gl_iters)
    timings: dict[str, list[float]] = {"reference": [], "decoding": [], "vocoder": []}
    seconds = 0.0
    for run in range(args.repeats + 1):  # run 0 warms up (allocations, lazy imports)
        torch.manual_seed(0)
        start = time.perf_counter()
        z = synth.embed(reference, reference_text=ref_text).z  # (1, D)
        encoded = time.perf_counter()
        result = synth.synthesize([args.text], z)[0]
        decoded = time.perf_counter()
        wav = vocoder(result.mel)
        done = time.perf_counter()
        seconds = wav.shape[-1] / synth.audio.sample_rate
        if run:
            timings["reference"].append(encoded - start)
            timings["decoding"].append(decoded - encoded)
            timings["vocoder"].append(done - decoded)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    acoustic = medians["reference"] + medians["decoding"]
    report = {
        "model": model_name,
        "reference": ref_name,
        "text": args.text,
        "output_s": round(seconds, 3),
        "stopped": result.stopped,
        "length_model": synth.resamples_to_length,
        "threads": args.threads,
        "repeats": args.repeats,
        "gl_iters": args.gl_iters,
        "median_ms": {name: round(1000 * value, 1) for name, value in medians.items()},
        "rtf": {
            "acoustic (reference + decoding)": round(acoustic / seconds, 3),
            "vocoder (Griffin-Lim)": round(medians["vocoder"] / seconds, 3),
            "total": round((acoustic + medians["vocoder"]) / seconds, 3),
        },
        "runs_ms": {name: [round(1000 * v, 1) for v in values] for name, values in timings.items()},
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    print(f"model: {model_name}\nreference: {ref_name}\noutput: {seconds:.2f} s (stopped: {result.stopped})")
    print(f"threads {args.threads}, median of {args.repeats} runs, Griffin-Lim {args.gl_iters} iterations")
    print("| part | median ms | RTF |")
    print("|---|---|---|")
    print(
        f"| reference encoding (load + mel + encoder) | {_median_ms(timings['reference']):.1f} | {medians['reference'] / seconds:.3f} |"
    )
    print(
        f"| autoregressive decoding | {_median_ms(timings['decoding']):.1f} | {medians['decoding'] / seconds:.3f} |"
    )
    print(f"| acoustic model (both) | {1000 * acoustic:.1f} | {acoustic / seconds:.3f} |")
    print(
        f"| Griffin-Lim vocoder | {_median_ms(timings['vocoder']):.1f} | {medians['vocoder'] / seconds:.3f} |"
    )
    print(
        f"| transfer, total | {1000 * (acoustic + medians['vocoder']):.1f} | {report['rtf']['total']:.3f} |"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
