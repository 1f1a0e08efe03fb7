#!/usr/bin/env python3
"""Give a trained model a length model (``prosody.utterance_length``) without training it again.

The length model (:mod:`prosody_vae.tts.utterance_length`) reads only the tokens and the detached
conditioning [posterior mean, speaker], so it can be fitted after the fact: every training item's
posterior mean is computed once with the trained model (eval mode), then the length model alone is
fitted to the items' log lengths in frames by full-batch Adam. Nothing else in the model changes.
The result is a packed model (as ``recipes/package_model.py`` writes) whose config has
``prosody.utterance_length: true``; the validation split's error is printed beside the training
split's, and beside the error of the length the tokens alone predict (no conditioning).

    .venv/bin/python recipes/fit_utterance_length.py --checkpoint exp/espeak_mv_mixed2_na/checkpoints/step_1500.pt \
        --out exp/espeak_mv_mixed2_na/with_length.pt

A model trained with ``prosody.utterance_length: true`` from the start learns it in training instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from prosody_vae.checkpoint import load_checkpoint, save_checkpoint
from prosody_vae.config import ExperimentConfig
from prosody_vae.data.dataset import ProsodyDataset, collate
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.packed import model_weights, packed_state
from prosody_vae.text import build_tokenizer
from prosody_vae.tts.model import ProsodyTTS, build_model


@torch.no_grad()
def _conditioning(
    model: ProsodyTTS, dataset: ProsodyDataset, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """tokens (N, L), token lengths (N,), conditioning (N, C) and mel lengths (N,) of every item."""
    tokens, token_lengths, conditioning, mel_lengths = [], [], [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    multi = model.speaker_embedding is not None
    for batch in loader:
        speakers = batch.speakers if multi else None
        mean = model.posterior_means(
            batch.mels,
            batch.mel_lengths,
            tokens=batch.tokens,
            token_lengths=batch.token_lengths,
            speakers=speakers,
            f0=batch.f0,
        )
        conditioning.append(model.conditioning(mean, speakers))
        tokens += list(batch.tokens)
        token_lengths.append(batch.token_lengths)
        mel_lengths.append(batch.mel_lengths)
    padded = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True)
    return padded, torch.cat(token_lengths), torch.cat(conditioning), torch.cat(mel_lengths)


def _error(model: ProsodyTTS, data: tuple[torch.Tensor, ...]) -> float:
    """Root mean squared error of the log length (about the relative error of the length)."""
    with torch.no_grad():
        return math.sqrt(float(model.utterance_length.loss(*data).mean()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint or packed model")
    parser.add_argument("--out", type=Path, required=True, help="the packed model to write")
    parser.add_argument(
        "--data", type=Path, default=None, help="prepared data (default: the config's data.root)"
    )
    parser.add_argument("--steps", type=int, default=2000, help="full-batch Adam steps")
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--batch-size", type=int, default=32, help="items per posterior pass")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    state = load_checkpoint(args.checkpoint)
    source = ExperimentConfig.from_dict(state["config"], source=f"{args.checkpoint} (config)")
    if source.prosody.utterance_length:
        print(f"note: {args.checkpoint} has a length model already; it is fitted again")
    config = dataclasses.replace(source, prosody=dataclasses.replace(source.prosody, utterance_length=True))
    tokenizer = build_tokenizer(**state["tokenizer"])
    speakers = list(state["speakers"])
    model = build_model(config, n_symbols=tokenizer.vocab_size, n_speakers=len(speakers))
    weights = {
        k: v
        for k, v in model_weights(state, args.checkpoint).items()
        if not k.startswith("utterance_length.")
    }
    missing, unexpected = model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, strict=False
    )
    if unexpected or any(not k.startswith("utterance_length.") for k in missing):
        raise SystemExit(f"{args.checkpoint}: weights do not fit its config ({(unexpected + missing)[:3]})")
    model.eval()

    root = args.data or Path(config.data.root)
    features = root / "features"
    splits = {}
    for name in (config.data.train_split, config.data.valid_split):
        path = root / "splits" / f"{name}.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path}: split manifest not found (run the prepare stage for {root})")
        utterances = [u for u in read_manifest(path) if len(speakers) == 1 or u.speaker in speakers]
        if not utterances:
            raise SystemExit(f"{path}: no utterance of the model's voices")
        dataset = ProsodyDataset(
            utterances, features, tokenizer, speakers=speakers if len(speakers) > 1 else None
        )
        splits[name] = _conditioning(model, dataset, args.batch_size)
        print(f"{name}: {len(utterances)} posterior means, {time.time() - started:.0f} s", flush=True)
    train, valid = splits[config.data.train_split], splits[config.data.valid_split]

    length = model.utterance_length
    optimizer = torch.optim.Adam(length.parameters(), lr=args.lr)
    for step in range(args.steps):
        optimizer.zero_grad()
        loss = length.loss(*train).mean()
        loss.backward()
        optimizer.step()
        if step == args.steps // 2:  # the tokens' part is settled: finish more gently
            for group in optimizer.param_groups:
                group["lr"] = args.lr / 10
    with torch.no_grad():  # the tokens alone: the conditioning's part left out (its bias kept)
        weight = length.rate.weight.clone()
        length.rate.weight.zero_()
        tokens_only = _error(model, train), _error(model, valid)
        length.rate.weight.copy_(weight)
    print(
        f"log-length error (rms): training {_error(model, train):.3f}, validation {_error(model, valid):.3f} "
        f"(tokens alone: {tokens_only[0]:.3f}, {tokens_only[1]:.3f})"
    )
    stored = next(v.dtype for v in weights.values() if v.is_floating_point())  # fp16 if packed, else fp32
    packed = packed_state(
        state,
        args.checkpoint,
        dtype=stored,
        provenance={"utterance_length": f"fitted by recipes/fit_utterance_length.py on {root}"},
        weights=model.state_dict(),
        config=config.to_dict(),
    )
    save_checkpoint(args.out, packed)
    print(f"wrote {args.out} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
