"""Time Coqui TTS' Tacotron2-Capacitron on the workload of ``bench/bench_training_step.py``.

The reference side of the side-by-side comparison in docs/benchmarks.md. It builds Coqui's own
``Tacotron2`` with Capacitron as its LJSpeech recipe configures it
(``recipes/ljspeech/tacotron2-Capacitron/train_capacitron_t2.py`` in coqui-tts 0.28: r = 2, dynamic
convolution attention, C = 50, latent 128, text summary 128, RAdam lr 1e-3 with the stepwise schedule,
SGD lr 1e-5 momentum 0.9 on beta, capacitron_grad_clip 5, no trainer clipping, MSE with
``seq_len_norm``, stop-token pos_weight 15). One deviation: characters instead of espeak phonemes,
so that no phonemiser is needed; token ids are random either way.

Workload and timing, the same as our script's: batch 8, mel lengths 400..300, text lengths 80..60,
80 mels, fp32; training step = what ``trainer.Trainer.optimize`` runs for this model (forward and
Coqui's loss, beta backward and SGD step, main backward, Capacitron gradient clipping, RAdam step,
LR scheduler step, zero_grad), median of ``--steps`` after ``--warmup``; inference = a 400-frame
reference mel with its 80-token transcript, then 80 tokens for exactly ``--max-steps`` decoder steps
(the stop token is disabled), batch 1, median of ``--infer-runs`` after ``--infer-warmup``.

Each phase runs in its own subprocess so that its peak RSS is its own. stdout: one JSON line per
phase, then a summary line, in the format of ``bench_training_step.py`` (``config`` is ``coqui``).

Needs coqui-tts 0.28, which pins its own dependencies, so keep it in a separate environment::

    python -m venv ../coqui-venv
    ../coqui-venv/bin/pip install -e '.[coqui]'          # prosody_vae + coqui-tts 0.28 + torch 2.11
    ../coqui-venv/bin/python bench/bench_coqui_capacitron.py
    ../coqui-venv/bin/python bench/bench_coqui_capacitron.py --phase train --steps 10 --warmup 2
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time

import torch

MEL_LENGTHS = [400, 386, 371, 357, 343, 329, 314, 300]
TEXT_LENGTHS = [80, 77, 74, 71, 69, 66, 63, 60]
N_MELS = 80
R = 2
INFER_TEXT_LEN = 80
REF_MEL_LEN = 400
SAMPLE_RATE = 22050
HOP_LENGTH = 256
INSTALL = "python -m venv ../coqui-venv && ../coqui-venv/bin/pip install -e '.[coqui]'"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _require_coqui() -> str:
    """coqui-tts' version, or exit with the command that installs it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("coqui-tts")
    except PackageNotFoundError:
        sys.exit(f"error: coqui-tts is not installed in {sys.executable}; install it with: {INSTALL}")
    if not installed.startswith("0.28."):
        print(f"warning: coqui-tts {installed}; the published figures are for 0.28", file=sys.stderr)
    return installed


def _build(max_steps: int):
    """Coqui's Tacotron2 + Capacitron, configured as its LJSpeech Capacitron recipe."""
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CapacitronVAEConfig
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.models.tacotron2 import Tacotron2

    config = Tacotron2Config(
        audio=BaseAudioConfig(
            sample_rate=SAMPLE_RATE,
            do_trim_silence=True,
            trim_db=60.0,
            signal_norm=False,
            mel_fmin=0.0,
            mel_fmax=11025,
            spec_gain=1.0,
            log_func="np.log",
            ref_level_db=20,
            preemphasis=0.0,
            num_mels=N_MELS,  # the recipe's default, stated
            hop_length=HOP_LENGTH,  # the recipe's default, stated
        ),
        capacitron_vae=CapacitronVAEConfig(capacitron_VAE_loss_alpha=1.0, capacitron_capacity=50),
        use_capacitron_vae=True,
        r=R,
        optimizer="CapacitronOptimizer",
        optimizer_params={
            "RAdam": {"betas": [0.9, 0.998], "weight_decay": 1e-6},
            "SGD": {"lr": 1e-5, "momentum": 0.9},
        },
        attention_type="dynamic_convolution",
        grad_clip=0.0,  # the recipe clips with capacitron_grad_clip instead
        double_decoder_consistency=False,
        ga_alpha=0.0,
        use_phonemes=False,  # deviation: the recipe uses espeak phonemes
        phonemizer=None,
        text_cleaner="phoneme_cleaners",  # unused: token ids are fed directly
        stopnet_pos_weight=15,
        mixed_precision=False,
        seq_len_norm=True,
        lr=1e-3,
        lr_scheduler="StepwiseGradualLR",
        lr_scheduler_params={
            "gradual_learning_rates": [[0, 1e-3], [2e4, 5e-4], [4e5, 3e-4], [6e4, 1e-4], [8e4, 5e-5]]
        },
        scheduler_after_epoch=False,
        loss_masking=False,
        decoder_loss_alpha=1.0,
        postnet_loss_alpha=1.0,
        postnet_diff_spec_alpha=0.0,
        decoder_diff_spec_alpha=0.0,
        decoder_ssim_alpha=0.0,
        postnet_ssim_alpha=0.0,
        max_decoder_steps=max_steps,  # inference only; the recipe keeps the default 10000
    )
    return Tacotron2(config)  # builds the character tokenizer and sets config.num_chars


def _batch(model) -> dict:
    """The workload as Coqui's data loader would deliver it (``TTSDataset.collate_fn``)."""
    import numpy as np
    from TTS.tts.utils.data import prepare_stop_target

    batch = len(MEL_LENGTHS)
    tokens = torch.zeros(batch, max(TEXT_LENGTHS), dtype=torch.long)
    mels = torch.zeros(batch, max(MEL_LENGTHS), N_MELS)  # 400 frames: already a multiple of r
    for b, (tl, ml) in enumerate(zip(TEXT_LENGTHS, MEL_LENGTHS, strict=True)):
        tokens[b, :tl] = torch.randint(1, model.config.num_chars, (tl,))  # 0 is padding
        mels[b, :ml] = torch.randn(ml, N_MELS)
    stops = [np.array([0.0] * (ml - 1) + [1.0]) for ml in MEL_LENGTHS]
    raw = {
        "token_id": tokens,
        "token_id_lengths": torch.tensor(TEXT_LENGTHS),
        "speaker_names": ["ljspeech"] * batch,
        "linear": None,
        "mel": mels,
        "mel_lengths": torch.tensor(MEL_LENGTHS),
        "stop_targets": torch.FloatTensor(prepare_stop_target(stops, R)),
        "item_idxs": list(range(batch)),
        "d_vectors": None,
        "speaker_ids": None,
        "attns": None,
        "waveform": None,
        "raw_text": [""] * batch,
        "pitch": None,
        "energy": None,
        "language_ids": None,
        "audio_unique_names": [f"utt{b}" for b in range(batch)],
    }
    return model.format_batch(raw)


def phase_train(args) -> dict:
    model = _build(args.max_steps)
    batch = _batch(model)
    criterion = model.get_criterion()
    optimizer = model.get_optimizer()  # CapacitronOptimizer: RAdam on the model, SGD on beta
    scheduler = model.get_scheduler([optimizer])
    model.train()
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        _, losses = model.train_step(batch, criterion)  # forward + TacotronLoss
        model.before_backward_pass(losses, [optimizer])  # beta_loss.backward(); SGD step on beta
        losses["loss"].backward()
        model.before_gradient_clipping()  # clip_grad_norm_(all but beta, capacitron_grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - start
        if i >= args.warmup:
            times.append(elapsed)
    return {
        "train_s_median": statistics.median(times),
        "train_s_min": min(times),
        "train_s_max": max(times),
        "train_steps_s": [round(t, 3) for t in times],
        "loss_last": float(losses["loss"].detach()),
        "params": sum(p.numel() for p in model.parameters()),
    }


def phase_infer(args) -> dict:
    model = _build(args.max_steps)
    model.eval()
    model.decoder.stop_threshold = float("inf")  # never stop: exactly --max-steps steps
    vocabulary = model.config.num_chars
    aux_input = {
        "style_mel": torch.randn(1, REF_MEL_LEN, N_MELS),
        "style_text": torch.randint(1, vocabulary, (1, INFER_TEXT_LEN)),
        "d_vectors": None,
        "speaker_ids": None,
    }
    tokens = torch.randint(1, vocabulary, (1, INFER_TEXT_LEN))

    def run():
        with torch.no_grad():
            return model.inference(tokens, aux_input=dict(aux_input))

    for _ in range(args.infer_warmup):
        run()
    times = []
    for _ in range(args.infer_runs):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    steps = int(out["stop_tokens"].shape[1])
    if steps != args.max_steps:
        raise RuntimeError(f"the decoder ran {steps} steps, not --max-steps {args.max_steps}")
    frames = int(out["model_outputs"].shape[1])
    audio_s = args.max_steps * R * HOP_LENGTH / SAMPLE_RATE
    median = statistics.median(times)
    return {
        "infer_s_median": median,
        "infer_runs_s": [round(t, 3) for t in times],
        "decoder_steps": steps,
        "frames": frames,
        "audio_s": audio_s,
        "ms_per_decoder_step": 1000 * median / args.max_steps,
        "rtf": median / audio_s,
        "params": sum(p.numel() for p in model.parameters()),
    }


def _child(args) -> None:
    coqui = _require_coqui()
    logging.disable(logging.WARNING)  # Coqui's model-building chatter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = (phase_train if args.phase == "train" else phase_infer)(args)
    result.update(
        phase=args.phase,
        config="coqui",
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        coqui_tts=coqui,
        peak_rss_mib=_peak_rss_mib(),
    )
    print(json.dumps(result), flush=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase", default="isolated", choices=["isolated", "train", "infer"])
    parser.add_argument("--threads", type=_positive, default=2)
    parser.add_argument("--warmup", type=_count, default=2, help="warm-up training steps")
    parser.add_argument("--steps", type=_positive, default=10, help="timed training steps")
    parser.add_argument("--max-steps", type=_positive, default=500, help="decoder steps at inference")
    parser.add_argument("--infer-warmup", type=_count, default=1)
    parser.add_argument("--infer-runs", type=_positive, default=3)
    args = parser.parse_args()

    if args.phase != "isolated":
        _child(args)
        return
    _require_coqui()  # fail here, with the install command, rather than in both children
    results = []
    for phase in ("train", "infer"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--phase", phase]
        # stderr passes through, so a failing phase shows its traceback
        line = (
            subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
        )
        print(line, flush=True)
        results.append(json.loads(line))
    summary = {
        f"{r['config']}_{r['phase']}": {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in r.items()
            if k in ("train_s_median", "ms_per_decoder_step", "rtf", "params", "peak_rss_mib")
        }
        for r in results
    }
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
