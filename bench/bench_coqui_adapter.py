"""Coqui's Capacitron vs ours, both inside Coqui TTS' own Tacotron 2 (not a test). Results: docs/benchmarks.md.

Builds Coqui's ``Tacotron2`` with Capacitron as its LJSpeech Tacotron2-Capacitron recipe configures it
(r = 2, dynamic convolution attention, C = 50, latent 128, text summary 128, RAdam lr 1e-3 + SGD for
beta at lr 1e-5 with momentum 0.9, capacitron_grad_clip 5, characters instead of phonemes), twice
from the same seed: once as it is, once with ``prosody_vae.integrations.coqui.use_prosody_vae`` in place of
its Capacitron layer. Everything else (model weights, loss, both optimisers, LR schedule, clipping,
the batch) is identical. Each model then trains for ``--steps`` steps on the same synthetic batch
with the same RNG seed, exactly as ``trainer.Trainer.optimize`` steps this model in fp32, and the
script prints per-step loss, KL, beta and step time, then a JSON summary line.

The batch is one fixed synthetic batch (log-mel-like noise), so the numbers say how the two layers
behave under Coqui's training, not how well either learns speech.

Needs a Python with coqui-tts 0.28 (``pip install prosody_vae[coqui]``), e.g.::

    PYTHONPATH=. ../coqui-venv/bin/python bench/bench_coqui_adapter.py --threads 1 --steps 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch


def build(seed: int, ours: bool):
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CapacitronVAEConfig
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.models.tacotron2 import Tacotron2

    config = Tacotron2Config(
        audio=BaseAudioConfig(sample_rate=22050, mel_fmax=11025, signal_norm=False, num_mels=80),
        use_capacitron_vae=True,
        capacitron_vae=CapacitronVAEConfig(capacitron_VAE_loss_alpha=1.0, capacitron_capacity=50),
        optimizer="CapacitronOptimizer",
        optimizer_params={
            "RAdam": {"betas": [0.9, 0.998], "weight_decay": 1e-6},
            "SGD": {"lr": 1e-5, "momentum": 0.9},
        },
        r=2,
        attention_type="dynamic_convolution",
        grad_clip=0.0,
        double_decoder_consistency=False,
        use_phonemes=False,
        phonemizer=None,
        text_cleaner="basic_cleaners",
        stopnet_pos_weight=15,
        seq_len_norm=True,
        lr=1e-3,
        lr_scheduler="StepwiseGradualLR",
        lr_scheduler_params={
            "gradual_learning_rates": [[0, 1e-3], [2e4, 5e-4], [4e5, 3e-4], [6e4, 1e-4], [8e4, 5e-5]]
        },
        loss_masking=False,
        ga_alpha=0.0,
        decoder_ssim_alpha=0.0,
        postnet_ssim_alpha=0.0,
        decoder_diff_spec_alpha=0.0,
        postnet_diff_spec_alpha=0.0,
    )
    torch.manual_seed(seed)
    model = Tacotron2(config)
    if ours:
        from prosody_vae.integrations.coqui import use_prosody_vae

        torch.manual_seed(seed + 1)
        use_prosody_vae(model)
    return model


def make_batch(model, batch: int, frames: int, seed: int) -> dict:
    from TTS.tts.utils.data import prepare_stop_target

    gen = torch.Generator().manual_seed(seed)
    mel_lengths = [frames - i * frames // (4 * batch) for i in range(batch)]  # descending, within 25%
    text_lengths = [max(2, m // 5) for m in mel_lengths]
    tokens = torch.zeros(batch, max(text_lengths), dtype=torch.long)
    mel = torch.zeros(batch, frames + frames % 2, 80)
    for i, (t, m) in enumerate(zip(text_lengths, mel_lengths, strict=True)):
        tokens[i, :t] = torch.randint(1, model.config.num_chars, (t,), generator=gen)
        mel[i, :m] = (torch.randn(m, 80, generator=gen) * 2 - 5).clamp(-11.5, 2)
    stop = torch.FloatTensor(prepare_stop_target([np.array([0.0] * (m - 1) + [1.0]) for m in mel_lengths], 2))
    raw = {
        "token_id": tokens,
        "token_id_lengths": torch.LongTensor(text_lengths),
        "speaker_names": ["s"] * batch,
        "linear": None,
        "mel": mel,
        "mel_lengths": torch.LongTensor(mel_lengths),
        "stop_targets": stop,
        "item_idxs": list(range(batch)),
        "d_vectors": None,
        "speaker_ids": None,
        "attns": None,
        "waveform": None,
        "raw_text": [""] * batch,
        "pitch": None,
        "energy": None,
        "language_ids": None,
        "audio_unique_names": [f"synthetic_{i}" for i in range(batch)],
    }
    return model.format_batch(raw)


def train(model, batch: dict, steps: int, seed: int) -> list[dict]:
    criterion = model.get_criterion()
    optimizer = model.get_optimizer()
    scheduler = model.get_scheduler([optimizer])
    model.train()
    torch.manual_seed(seed)  # same dropout and posterior-sampling streams for both models
    records = []
    for step in range(steps):
        started = time.perf_counter()
        _, loss_dict = model.train_step(batch, criterion)
        model.before_backward_pass(loss_dict, [optimizer])  # beta backward + SGD first_step
        loss_dict["loss"].backward()
        model.before_gradient_clipping()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - started
        records.append(
            {
                "step": step + 1,
                "loss": float(loss_dict["loss"].detach()),
                "reconstruction": float((loss_dict["decoder_loss"] + loss_dict["postnet_loss"]).detach()),
                "kl": float(loss_dict["capacitron_vae_kl_term"].detach()),
                "beta": float(loss_dict["capacitron_beta"].detach()),
                "seconds": seconds,
            }
        )
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=160, help="longest mel in the batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import logging

    logging.disable(logging.WARNING)
    results = {}
    for name, ours in (("coqui", False), ("prosody_vae", True)):
        model = build(args.seed, ours)
        batch = make_batch(model, args.batch, args.frames, args.seed + 1)
        layer_params = sum(p.numel() for p in model.capacitron_vae_layer.parameters())
        records = train(model, batch, args.steps, args.seed + 2)
        for r in records:
            print(
                f"{name:12s} step {r['step']:3d}  loss {r['loss']:.4f}  recon {r['reconstruction']:.4f}  "
                f"KL {r['kl']:8.3f}  beta {r['beta']:.6f}  {r['seconds']:.2f} s",
                flush=True,
            )
        results[name] = {
            "capacitron_layer_params": layer_params,
            "median_step_s": statistics.median(r["seconds"] for r in records[1:] or records),
            "first": records[0],
            "last": records[-1],
            "kl": [round(r["kl"], 3) for r in records],
            "loss": [round(r["loss"], 4) for r in records],
            "beta": [round(r["beta"], 6) for r in records],
        }
    summary = {
        "workload": {
            "batch": args.batch,
            "frames": args.frames,
            "steps": args.steps,
            "threads": args.threads,
        },
        "torch": torch.__version__,
        "results": results,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
