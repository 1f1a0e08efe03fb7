#!/usr/bin/env python3
"""How well does a model time a sentence? Lengths against espeak-ng's at one fixed set of settings.

espeak-ng speaks ``--n`` held-out sentences in one training voice with the same settings (pitch,
range and contour at their middle, each ``--rates`` value in turn), so every difference between
their lengths is the sentences' own. The model then speaks each sentence B twice: with z of B's own
recording ("own z": the timing a reconstruction gets) and with z of another sentence A spoken with
the same settings ("other sentence's z": what an inter-text transfer gets; the settings, hence the
rate, are the same, so an ideal z would change nothing). Reported per rate, as the s.d. of the log
length about espeak-ng's after removing the mean offset (0.05 is about 5 %):

* the decoder's own timing (``--decoder-timing``) and, where the model has a length model
  (``prosody.utterance_length``), its outputs resampled to the length model's lengths; each output
  vocoded and trimmed as the corpus is, as the evaluations measure the speaking rate;
* the length model's tokens alone (its rate part left out), and how much the rate it reads from z
  varies across the sentences that were all spoken at one rate (ideally 0).

    .venv/bin/python recipes/timing_eval.py --checkpoint prosody_vae/assets/espeak_prosody.pt \\
        --corpus data/espeak_mixed/prepared --voice en+f2 --n 30
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from prosody_vae.audio import load_audio, process_audio
from prosody_vae.audio.vocoders import load_vocoder, vocode
from prosody_vae.data.espeak import corpus_question_rise, synthesize_with_settings
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import Synthesizer


def _seconds(synth: Synthesizer, vocoder, text: str, z: torch.Tensor, speaker: str | None) -> float:
    """Seconds of speech in the model's output for ``text`` with latent z (1, D): vocoded, then
    trimmed as the corpus is (what the evaluations measure the speaking rate on)."""
    out = synth.synthesize([text], z, speaker=speaker)[0]
    wav = vocode(vocoder, out.mel, out.f0).float().cpu().numpy()
    return len(process_audio(wav, synth.audio.sample_rate, synth.audio)) / synth.audio.sample_rate


def _spread(log_lengths: np.ndarray, reference: np.ndarray) -> float:
    """s.d. of the log length about the reference's, the mean offset removed."""
    return float(np.std(log_lengths - reference))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--corpus", type=Path, required=True, help="prepared corpus (its test split's held-out texts)"
    )
    parser.add_argument("--voice", required=True, help="a training voice of the model")
    parser.add_argument("--n", type=int, default=30, help="held-out sentences")
    parser.add_argument(
        "--rates", type=int, nargs="+", default=[150, 260], help="espeak-ng rates (words per minute)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    synth = Synthesizer.from_checkpoint(args.checkpoint)
    if synth.speakers and args.voice not in synth.speakers:
        raise SystemExit(f"{args.voice!r} is not a training voice of this model: {synth.speakers}")
    speaker = args.voice if synth.speakers else None
    test = read_manifest(args.corpus / "splits" / "test.jsonl")
    held_out = sorted({u.text for u in test if u.labels.get("held_out_text") == 1.0})
    if len(held_out) < 2:
        raise SystemExit(f"{args.corpus}: its test split has fewer than 2 held-out sentences")
    rng = np.random.default_rng(args.seed)
    texts = [held_out[i] for i in rng.permutation(len(held_out))[: args.n]]
    question_rise = corpus_question_rise(test[0].audio)
    frames_per_second = synth.audio.sample_rate / synth.audio.hop_length
    length_model = synth.model.utterance_length
    vocoder = load_vocoder(None, synth.audio, default=synth.default_vocoder)
    tokens, lengths = synth.tokens(texts)
    speakers = synth.speaker_ids(speaker, len(texts))
    print(f"{len(texts)} held-out sentences in {args.voice}; s.d. of log length about espeak-ng's")
    print(
        "| rate (wpm) | espeak-ng's own s.d. | decoder, own z | decoder, other sentence's z "
        "| length model, own z | length model, other sentence's z | length model, tokens alone "
        "| rate read from z, s.d. |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rate in args.rates:
        settings = {"pitch": 50, "pitch_range": 50, "rate": rate, "contour": 50}
        espeak, z = [], []
        with tempfile.TemporaryDirectory() as folder:
            for i, text in enumerate(texts):
                path = synthesize_with_settings(
                    text,
                    settings,
                    voice=args.voice,
                    question_rise=question_rise,
                    out_path=Path(folder) / f"{i}.wav",
                )
                espeak.append(
                    len(load_audio(path, synth.audio)) / synth.audio.sample_rate
                )  # trimmed as in training
                z.append(synth.embed(path, reference_text=text, speaker=speaker).mean)
        own = torch.cat(z)
        other = own.roll(1, dims=0)  # sentence i speaks with the z of sentence i - 1
        reference = np.log(espeak)
        row = [f"{rate}", f"{np.std(reference):.3f}"]
        # the decoder's timing, then the length model's (its outputs resampled to its lengths)
        for use_length_model in (False, True) if length_model is not None else (False,):
            synth.length_model = use_length_model
            for latents in (own, other):
                spoken = [
                    _seconds(synth, vocoder, text, latents[i : i + 1], speaker)
                    for i, text in enumerate(texts)
                ]
                row.append(f"{_spread(np.log(spoken), reference):.3f}")
        if length_model is None:
            row += ["–"] * 4
        else:
            with torch.no_grad():
                conditioning = synth.model.conditioning(own, speakers)
                rate_part = length_model.rate(conditioning).squeeze(-1).numpy()
                tokens_alone = length_model(tokens, lengths, conditioning).numpy() - rate_part
            row += [
                f"{_spread(tokens_alone - math.log(frames_per_second), reference):.3f}",
                f"{np.std(rate_part):.3f}",
            ]
        print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
