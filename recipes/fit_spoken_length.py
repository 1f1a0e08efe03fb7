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

import numpy as np
import torch

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


def _padded(mels: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([m.shape[0] for m in mels])
    out = torch.zeros(len(mels), int(lengths.max()), mels[0].shape[1])
    for i, mel in enumerate(mels):
        out[i, : mel.shape[0]] = mel
    return out, lengths


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint or packed model")
    parser.add_argument("--out", type=Path, required=True, help="the packed model to write")
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
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
    if source.prosody.spoken_length:
        print(f"note: {args.checkpoint} has a spoken-length head already; it is fitted again")
    config = dataclasses.replace(source, prosody=dataclasses.replace(source.prosody, spoken_length=True))
    tokenizer = build_tokenizer(**state["tokenizer"])
    speakers = list(state["speakers"])
    model = build_model(config, n_symbols=tokenizer.vocab_size, n_speakers=len(speakers))
    weights = {
        k: v for k, v in model_weights(state, args.checkpoint).items() if not k.startswith("spoken_length.")
    }
    missing, unexpected = model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, strict=False
    )
    if unexpected or any(not k.startswith("spoken_length.") for k in missing):
        raise SystemExit(f"{args.checkpoint}: weights do not fit its config ({(unexpected + missing)[:3]})")
    model.eval()
    head = model.spoken_length
    head.train()  # the stretch augmentation; the head has no dropout or batch statistics

    roots = args.data or [Path(config.data.root)]
    train = _items(model, tokenizer, roots, config.data.train_split, speakers)
    valid = _items(model, tokenizer, roots, config.data.valid_split, speakers)
    print(
        f"{len(train[2])} training items, {len(valid[2])} validation items, {time.time() - started:.0f} s",
        flush=True,
    )

    optimizer = torch.optim.Adam(head.parameters(), lr=args.lr)
    mels, terms, _ = train
    for step in range(1, args.steps + 1):
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
    stored = next(v.dtype for v in weights.values() if v.is_floating_point())  # fp16 if packed, else fp32
    packed = packed_state(
        state,
        args.checkpoint,
        dtype=stored,
        provenance={
            "spoken_length": f"fitted by recipes/fit_spoken_length.py on {', '.join(map(str, roots))} "
            f"({args.steps} steps, seed {args.seed})"
        },
        weights=model.state_dict(),
        config=config.to_dict(),
    )
    save_checkpoint(args.out, packed)
    print(f"wrote {args.out} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
