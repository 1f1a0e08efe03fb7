"""Time the full training step and free-running inference on the reference workload.

The workload is the one of the reference implementation's benchmark script (Coqui TTS 0.28
Tacotron2-Capacitron): batch 8, mel lengths 400..300, text lengths 80..60, 80 mels, r = 2, fp32.

Training step: exactly what the training loop does per step. The model comes from
``build_model(config, n_symbols=64)``, wrapped in ``TrainingModule`` with ``CapacityObjective(50.0)``
and the loop's auxiliary-loss weights, and the optimiser is the loop's ``DualOptimizer``; one step is
``parts, _ = module(batch)`` then ``optimizer.step(parts.loss, parts.beta_loss)``.

Inference: z from the posterior of a 400-frame reference mel (with its 80-token transcript), then
80 tokens synthesised for exactly 500 decoder steps (the stop token is disabled), batch 1.

Configurations (``--config``): ``default`` is ``ExperimentConfig()``; ``cpu`` is
``egs/espeak_prosody/conf/train_cpu.yaml``; ``coqui_size`` is ``bench/conf/coqui_size.yaml``, our model
at the reference implementation's layer sizes (the equal-size comparison of ``bench/compare_coqui.py``);
any other value is read as the path of an experiment YAML. Every configuration runs with
``backbone.r = 2``, because the workload (and the reference it is compared with) is defined at r = 2.
The JSON ``config`` field is the name, or the YAML file's stem for a path.

Each phase runs in its own subprocess so that its peak RSS is its own. stdout: one JSON line per
phase, then a summary line.

    .venv/bin/python bench/bench_training_step.py                      # both configs, both phases
    .venv/bin/python bench/bench_training_step.py --config cpu --phase train
    .venv/bin/python bench/bench_training_step.py --config coqui_size --phase train --threads 1
    .venv/bin/python bench/bench_training_step.py --config path/to/experiment.yaml --phase infer
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

MEL_LENGTHS = [400, 386, 371, 357, 343, 329, 314, 300]
TEXT_LENGTHS = [80, 77, 74, 71, 69, 66, 63, 60]
N_MELS = 80
N_SYMBOLS = 64
R = 2
INFER_TEXT_LEN = 80
REF_MEL_LEN = 400
SAMPLE_RATE = 22050
HOP_LENGTH = 256
BENCH = Path(__file__).resolve().parent
# Named configurations; ``default`` is ExperimentConfig() itself and has no file.
NAMED_CONFIGS = {
    "cpu": BENCH.parent / "egs" / "espeak_prosody" / "conf" / "train_cpu.yaml",
    "coqui_size": BENCH / "conf" / "coqui_size.yaml",
}


def _config_label(name: str) -> str:
    """What the JSON ``config`` field says: the name, or the stem of a YAML path."""
    return name if name == "default" or name in NAMED_CONFIGS else Path(name).stem


def _config(name: str):
    """The experiment config of a ``--config`` value (a name or a YAML path), at r = 2."""
    from prosody_vae.config import ExperimentConfig, load_config

    if name == "default":
        config = ExperimentConfig()
    else:
        path = NAMED_CONFIGS.get(name, Path(name))
        if not path.is_file():
            known = ", ".join(["default", *NAMED_CONFIGS])
            raise SystemExit(f"error: --config {name!r} is neither one of {known} nor a YAML file")
        config = load_config(path)
    return dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, r=R))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _batch():
    from prosody_vae.data.dataset import Batch

    batch = len(MEL_LENGTHS)
    tokens = torch.zeros(batch, max(TEXT_LENGTHS), dtype=torch.long)
    mels = torch.zeros(batch, max(MEL_LENGTHS), N_MELS)
    for b, (tl, ml) in enumerate(zip(TEXT_LENGTHS, MEL_LENGTHS, strict=True)):
        tokens[b, :tl] = torch.randint(1, N_SYMBOLS, (tl,))
        mels[b, :ml] = torch.randn(ml, N_MELS)
    return Batch(
        ids=[f"utt{b}" for b in range(batch)],
        tokens=tokens,
        token_lengths=torch.tensor(TEXT_LENGTHS),
        mels=mels,
        mel_lengths=torch.tensor(MEL_LENGTHS),
        speakers=torch.zeros(batch, dtype=torch.long),
        labels=[{} for _ in range(batch)],
    )


def _build(config):
    from prosody_vae.prosody.capacity import CapacityObjective
    from prosody_vae.training.objective import TrainingModule
    from prosody_vae.tts.model import build_model

    model = build_model(config, n_symbols=N_SYMBOLS)
    tc = config.train
    module = TrainingModule(
        model=model,
        objective=CapacityObjective(50.0),
        stop_weight=tc.stop_weight,
        stop_pos_weight=tc.stop_pos_weight,
        guided_attention_weight=tc.guided_attention_weight,
        guided_attention_sigma=tc.guided_attention_sigma,
    )
    return model, module


def phase_train(config, args) -> dict:
    from prosody_vae.training.memory import return_freed_memory
    from prosody_vae.training.optimizer import build_optimizer

    if args.low_memory:
        return_freed_memory()  # as `prosody-vae train --low-memory` does

    model, module = _build(config)
    optimizer = build_optimizer(module, config)
    batch = _batch()
    module.train()
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        parts, _ = module(batch)
        optimizer.step(parts.loss, parts.beta_loss)
        elapsed = time.perf_counter() - start
        if i >= args.warmup:
            times.append(elapsed)
    return {
        "train_s_median": statistics.median(times),
        "train_s_min": min(times),
        "train_s_max": max(times),
        "train_steps_s": [round(t, 3) for t in times],
        "loss_last": float(parts.loss.detach()),
        "params": sum(p.numel() for p in model.parameters()),
    }


def phase_infer(config, args) -> dict:
    from prosody_vae.inference.synthesizer import reduced_precision

    precision = reduced_precision(args.precision, torch.device("cpu"))
    model, _ = _build(config)
    model.eval()
    with torch.no_grad():
        model.backbone.stop_projection.bias.fill_(-1e4)  # never stop: exactly --max-steps steps
    ref_mel = torch.randn(1, REF_MEL_LEN, N_MELS)
    ref_tokens = torch.randint(1, N_SYMBOLS, (1, INFER_TEXT_LEN))
    tokens = torch.randint(1, N_SYMBOLS, (1, INFER_TEXT_LEN))
    lengths = torch.tensor([INFER_TEXT_LEN])

    def run(max_steps: int):
        with torch.no_grad():
            prosody = model.encode_prosody(
                ref_mel, torch.tensor([REF_MEL_LEN]), tokens=ref_tokens, token_lengths=lengths
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "did not stop within max_steps" is the point here
                return model.infer(
                    tokens, lengths, prosody.z, max_steps=max_steps, reduced_precision=precision
                )

    for _ in range(args.infer_warmup):
        run(args.max_steps)
    times = []
    for _ in range(args.infer_runs):
        start = time.perf_counter()
        out = run(args.max_steps)
        times.append(time.perf_counter() - start)
    frames = int(out.mel_lengths[0])
    audio_s = args.max_steps * R * HOP_LENGTH / SAMPLE_RATE
    median = statistics.median(times)
    return {
        "infer_s_median": median,
        "infer_runs_s": [round(t, 3) for t in times],
        "decoder_steps": args.max_steps,
        "frames": frames,
        "audio_s": audio_s,
        "ms_per_decoder_step": 1000 * median / args.max_steps,
        "rtf": median / audio_s,
        "params": sum(p.numel() for p in model.parameters()),
        "precision": args.precision,
    }


def _child(args) -> None:
    from prosody_vae.training.allocator import active_allocator

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = _config(args.config)
    result = (phase_train if args.phase == "train" else phase_infer)(config, args)
    result.update(
        phase=args.phase,
        config=_config_label(args.config),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        allocator=active_allocator(),
        peak_rss_mib=_peak_rss_mib(),
    )
    print(json.dumps(result), flush=True)


def main() -> None:
    from prosody_vae.training.allocator import ALLOCATORS, use_allocator

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase", default="isolated", choices=["isolated", "train", "infer"])
    parser.add_argument(
        "--config",
        default="both",
        help="both (default and cpu), default, cpu, coqui_size, or the path of an experiment YAML",
    )
    parser.add_argument(
        "--allocator",
        choices=ALLOCATORS,
        default="auto",
        help="C memory allocator, as prosody-vae train --allocator (auto: jemalloc when installed)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2, help="warm-up training steps")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--max-steps", type=int, default=500, help="decoder steps at inference")
    parser.add_argument("--infer-warmup", type=int, default=1)
    parser.add_argument("--infer-runs", type=int, default=3)
    parser.add_argument(
        "--precision", default="fp32", choices=["fp32", "bf16", "int8"], help="decoder cells at inference"
    )
    parser.add_argument(
        "--low-memory",
        action="store_true",
        help="train as prosody-vae train --low-memory does (fixed glibc mmap threshold, training/memory.py)",
    )
    args = parser.parse_args()

    # restarts this script once with the allocator preloaded, as the training commands do
    use_allocator(args.allocator, restart=True, command=[sys.executable, *sys.argv])

    configs = ["default", "cpu"] if args.config == "both" else [args.config]
    for config in configs:
        _config(config)  # a bad --config fails here, with its message, not inside a silent child
    phases = ["train", "infer"] if args.phase == "isolated" else [args.phase]
    if len(configs) == 1 and len(phases) == 1 and args.phase != "isolated":
        _child(args)
        return
    results = []
    for config in configs:
        for phase in phases:
            argv = [a for a in sys.argv[1:]]
            cmd = [sys.executable, __file__, *argv, "--phase", phase, "--config", config]
            line = (
                subprocess.run(cmd, check=True, capture_output=True, text=True)
                .stdout.strip()
                .splitlines()[-1]
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
