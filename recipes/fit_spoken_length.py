#!/usr/bin/env python3
"""Give a trained model a spoken-length head (``prosody.spoken_length``) without training it again.

The head (:mod:`prosody_vae.tts.spoken_length`) reads only a reference's log-mel, and its target is
the length model's text term of the reference's transcript, log sum_l d(token_l), which the trained
length model fixes. So it can be fitted after the fact: every training item's mel and target are
computed once, then the head alone is fitted by Adam on random batches (each mel stretched in time by
the head's own augmentation). Nothing else in the model changes. The result is a packed model (as
``recipes/package_model.py`` writes) whose config has ``prosody.spoken_length: true``.

What it prints on the validation items (and on ``--report`` splits): the rms error of the estimated
text term, and the correlation, within each voice, of the pace it gives (log T - estimate) with the
pace the transcript gives (log T - text term), which is what a transfer without a transcript uses.

    .venv/bin/python recipes/fit_spoken_length.py --checkpoint prosody_vae/assets/espeak_prosody.pt \\
        --data data/espeak_multivoice/prepared --out exp/spoken_length/espeak_prosody.pt

``--report-only`` fits nothing and reports on the head a model has (the shipped one, for one), with
a stretch check: references made 0.8x and 1.25x as long, by the phase vocoder on the audio and by
interpolating the mel, should change the output's length by those factors.

The run is short (about 12 minutes on 2 cores) and writes its result once, atomically; an interrupted
run is started again. A model trained with ``prosody.spoken_length: true`` learns the head in
training instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import librosa
import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from prosody_vae.audio import AudioError, load_audio, log_mel
from prosody_vae.checkpoint import load_checkpoint, save_checkpoint
from prosody_vae.config import ExperimentConfig
from prosody_vae.data.feature_cache import load_features
from prosody_vae.data.manifest import Utterance, read_manifest
from prosody_vae.inference.packed import model_weights, packed_state
from prosody_vae.text import build_tokenizer
from prosody_vae.tts.model import ProsodyTTS, build_model

Items = tuple[list[torch.Tensor], torch.Tensor, list[Utterance]]


@torch.no_grad()
def _items(
    model: ProsodyTTS,
    tokenizer,
    roots: list[Path],
    split: str,
    speakers: list[str],
    *,
    every_voice: bool = False,
) -> Items:
    """Every utterance of ``split`` under ``roots`` in the model's voices (in any voice with
    ``every_voice``): mels (T, M), the length model's text term of its transcript (N,), and the
    utterances."""
    mels, terms, kept = [], [], []
    for root in roots:
        path = root / "splits" / f"{split}.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path}: split manifest not found (run the prepare stage for {root})")
        for utt in read_manifest(path):
            if len(speakers) > 1 and utt.speaker not in speakers and not every_voice:
                continue  # a held-out voice: never in training, reported separately
            tokens = torch.tensor([tokenizer.encode(utt.text)])
            terms.append(model.utterance_length.text_term(tokens, torch.tensor([tokens.shape[1]])))
            mels.append(load_features(root / "features", utt.id)["mel"])
            kept.append(utt)
    if not kept:
        raise SystemExit(f"{', '.join(map(str, roots))}: no {split} utterance of the model's voices")
    return mels, torch.cat(terms), kept


def _vocoded_mel(utt: Utterance, config: ExperimentConfig, factor: float) -> torch.Tensor:
    """The utterance's audio made ``factor`` times as long by librosa's phase vocoder, as a log-mel."""
    wav = load_audio(utt.audio, config.audio)
    return log_mel(librosa.effects.time_stretch(wav, rate=1.0 / factor), config.audio)


def _vocoded_copies(
    items: Items, config: ExperimentConfig, copies: int, max_stretch: float, seed: int
) -> Items:
    """``copies`` more versions of each item, its audio stretched in time by librosa's phase vocoder
    (a factor drawn log-uniformly from [1 / max_stretch, max_stretch]) and analysed again; the target
    stays. A second kind of stretch beside the head's mel interpolation, made on the audio: a head
    fitted without it read a reference slowed 1.25x by the phase vocoder as nearly its original pace
    (scale 1.02), though it follows espeak-ng's own rate settings (docs/transfer.md)."""
    rng = np.random.default_rng(seed)
    mels, terms, utts, skipped = [], [], [], []
    for _, term, utt in zip(*items, strict=True):
        for _ in range(copies):
            factor = float(np.exp(rng.uniform(-np.log(max_stretch), np.log(max_stretch))))
            try:
                mels.append(_vocoded_mel(utt, config, factor))
            except AudioError as error:  # its cached mel still trains; only the copy is lost
                skipped.append(str(error))
                break
            terms.append(term)
            utts.append(utt)
    if skipped:
        print(f"no phase-vocoded copy of {len(skipped)} item(s) whose audio could not be read: {skipped[0]}")
    return mels, torch.stack(terms) if terms else torch.zeros(0), utts


def _padded(mels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T_max, M) zero-padded, and the lengths (B,)."""
    return pad_sequence(mels, batch_first=True), torch.tensor([m.shape[0] for m in mels])


@torch.no_grad()
def _estimates(model: ProsodyTTS, mels: list[torch.Tensor], batch_size: int = 64) -> torch.Tensor:
    model.spoken_length.eval()
    out = [model.spoken_length(*_padded(mels[i : i + batch_size])) for i in range(0, len(mels), batch_size)]
    model.spoken_length.train()
    return torch.cat(out)


def _report(name: str, model: ProsodyTTS, items: Items) -> str:
    """rms error of the text term; mean within-voice r of the estimated pace with the transcribed."""
    mels, terms, utts = items
    estimate = _estimates(model, mels)
    rms = math.sqrt(float((estimate - terms).square().mean()))
    log_t = np.log([m.shape[0] for m in mels])
    voices = np.array([u.speaker for u in utts])
    r = []
    for voice in sorted(set(voices)):
        m = voices == voice
        if m.sum() >= 8:
            r.append(np.corrcoef(log_t[m] - estimate.numpy()[m], log_t[m] - terms.numpy()[m])[0, 1])
    within = f", pace r within voice {np.mean(r):.3f} ({len(r)} voices)" if r else ""
    return f"{name}: {len(utts)} items, text-term error (rms, log) {rms:.3f}{within}"


def _stretch_check(
    name: str, model: ProsodyTTS, items: Items, config: ExperimentConfig, n: int = 24, seed: int = 0
) -> str:
    """How the pace the head gives follows a reference made longer or shorter. ``n`` of the items,
    their audio stretched by librosa's phase vocoder to 0.8x and 1.25x their duration, and their
    mel stretched alike by interpolation: the median ratio of the output-length scale the head gives
    the stretched reference to the one it gives the original. A head that counts what is said gives
    the stretch itself (0.8, 1.25); one that reads the pace from how the sounds look gives 1."""
    mels, _, utts = items
    chosen = np.random.default_rng(seed).choice(len(utts), min(n, len(utts)), replace=False)
    vocoded: dict[float, list[torch.Tensor]] = {0.8: [], 1.25: []}
    readable = []
    for i in chosen:
        try:
            pair = {f: _vocoded_mel(utts[i], config, f) for f in vocoded}
        except AudioError:
            continue  # left out of the check, and counted below
        readable.append(i)
        for f, mel in pair.items():
            vocoded[f].append(mel)
    unreadable = f", {len(chosen) - len(readable)} unreadable left out" if len(readable) < len(chosen) else ""
    if not readable:
        return f"{name}, stretched: no item's audio could be read{unreadable}"
    chosen = readable
    originals = [mels[i] for i in chosen]
    versions: dict[str, list[torch.Tensor]] = {}
    for f in (0.8, 1.25):
        versions[f"phase vocoder {f}x"] = vocoded[f]
        versions[f"mel interpolation {f}x"] = [
            torch.nn.functional.interpolate(m.T[None], size=round(f * m.shape[0]), mode="linear")[0].T
            for m in originals
        ]

    def log_scale(batch: list[torch.Tensor]) -> np.ndarray:  # log T - estimate, up to a constant
        return np.log([m.shape[0] for m in batch]) - _estimates(model, batch).numpy()

    base = log_scale(originals)
    parts = [f"{key} {np.median(np.exp(log_scale(v) - base)):.3f}" for key, v in versions.items()]
    return f"{name}, stretched ({len(chosen)} items{unreadable}; a count gives the stretch): " + ", ".join(
        parts
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint or packed model")
    parser.add_argument("--out", type=Path, default=None, help="the packed model to write")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="fit nothing: report on the head the checkpoint has (its error, pace r and stretch check)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=None,
        help="prepared data folders (default: the config's data.root)",
    )
    parser.add_argument("--steps", type=int, default=2500, help="Adam steps")
    parser.add_argument("--batch-size", type=int, default=32, help="items per step")
    parser.add_argument(
        "--lr", type=float, default=1e-3, help="learning rate (a tenth of it for the last 30 %%)"
    )
    parser.add_argument("--report", nargs="*", default=["test"], help="further splits to report on")
    parser.add_argument(
        "--vocoded-copies",
        type=int,
        default=0,
        help="phase-vocoder-stretched copies of each training item to add (0: the mel interpolation only)",
    )
    parser.add_argument(
        "--voice-warp",
        type=float,
        default=1.0,
        help="warp each training mel's frequency axis by up to this factor either way (1: off)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.out is None and not args.report_only:
        parser.error("--out is required (or --report-only)")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.time()
    state = load_checkpoint(args.checkpoint)
    source = ExperimentConfig.from_dict(state["config"], source=f"{args.checkpoint} (config)")
    if not source.prosody.utterance_length:
        raise SystemExit(
            f"{args.checkpoint}: the spoken-length head estimates the length model's text term, and this "
            "model has no length model (recipes/fit_utterance_length.py gives it one)"
        )
    if args.report_only and not source.prosody.spoken_length:
        raise SystemExit(f"{args.checkpoint}: no spoken-length head to report on (prosody.spoken_length)")
    if source.prosody.spoken_length and not args.report_only:
        print(f"note: {args.checkpoint} has a spoken-length head already; it is fitted again")
    config = dataclasses.replace(source, prosody=dataclasses.replace(source.prosody, spoken_length=True))
    tokenizer = build_tokenizer(**state["tokenizer"])
    speakers = list(state["speakers"])
    model = build_model(config, n_symbols=tokenizer.vocab_size, n_speakers=len(speakers))
    weights = {
        k: v
        for k, v in model_weights(state, args.checkpoint).items()
        if args.report_only or not k.startswith("spoken_length.")
    }
    missing, unexpected = model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, strict=False
    )
    if unexpected or any(not k.startswith("spoken_length.") for k in missing):
        raise SystemExit(f"{args.checkpoint}: weights do not fit its config ({(unexpected + missing)[:3]})")
    model.eval()
    head = model.spoken_length
    head.train()  # the stretch augmentation; the head has no dropout or batch statistics
    head.max_warp = args.voice_warp  # training only: not part of the model's config

    roots = args.data or [Path(config.data.root)]
    train = _items(model, tokenizer, roots, config.data.train_split, speakers)
    valid = _items(model, tokenizer, roots, config.data.valid_split, speakers)
    print(
        f"{len(train[2])} training items, {len(valid[2])} validation items, {time.time() - started:.0f} s",
        flush=True,
    )
    if args.vocoded_copies > 0 and not args.report_only:
        extra = _vocoded_copies(train, config, args.vocoded_copies, head.max_stretch, args.seed)
        train = (train[0] + extra[0], torch.cat([train[1], extra[1]]), train[2] + extra[2])
        print(f"{len(extra[2])} phase-vocoded copies added, {time.time() - started:.0f} s", flush=True)

    optimizer = torch.optim.Adam(head.parameters(), lr=args.lr)
    mels, terms, _ = train
    steps = 0 if args.report_only else args.steps
    for step in range(1, steps + 1):
        chosen = torch.randint(len(mels), (args.batch_size,)).tolist()
        batch, lengths = _padded([mels[i] for i in chosen])
        loss = head.loss(batch, lengths, terms[chosen]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == int(args.steps * 0.7):
            for group in optimizer.param_groups:
                group["lr"] = args.lr / 10
        if step % 250 == 0 or step == args.steps:
            print(f"step {step}: loss {float(loss.detach()):.4f}, {time.time() - started:.0f} s", flush=True)
    head.eval()

    print(_report("training", model, train))
    print(_report("validation", model, valid))
    for split in args.report:
        if all((root / "splits" / f"{split}.jsonl").is_file() for root in roots):
            items = _items(model, tokenizer, roots, split, speakers, every_voice=True)
            seen = [i for i, u in enumerate(items[2]) if u.speaker in speakers]
            unseen = [i for i, u in enumerate(items[2]) if u.speaker not in speakers]
            for name, chosen in ((f"{split}, training voices", seen), (f"{split}, other voices", unseen)):
                if chosen:
                    subset = ([items[0][i] for i in chosen], items[1][chosen], [items[2][i] for i in chosen])
                    print(_report(name, model, subset))
                    print(_stretch_check(name, model, subset, config, seed=args.seed), flush=True)
    if args.report_only:
        return 0
    stored = next(v.dtype for v in weights.values() if v.is_floating_point())  # fp16 if packed, else fp32
    packed = packed_state(
        state,
        args.checkpoint,
        dtype=stored,
        provenance={
            "spoken_length": f"fitted by recipes/fit_spoken_length.py on {', '.join(map(str, roots))} "
            f"({args.steps} steps, {args.vocoded_copies} phase-vocoded copies per item, voice warp "
            f"{args.voice_warp}, seed {args.seed})"
        },
        weights=model.state_dict(),
        config=config.to_dict(),
    )
    save_checkpoint(args.out, packed)
    print(f"wrote {args.out} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
