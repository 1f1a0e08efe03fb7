"""Benchmarks of the Capacitron module alone (not a test). Results go to docs/benchmarks.md.

Speed (default): forward + backward of CapacitronVAE + CapacityObjective on CPU, median over repeats,
for two workloads, each in its own subprocess so that its peak memory is its own:

* ``b32``: batch 32, 400 frames, 80 mels, latent 128, text summary 128 over 80 tokens of 512-d
  embeddings (the size of Coqui's character embeddings, which its text summary reads);
* ``b8``: the reference implementation's benchmark workload (Coqui TTS 0.28): batch 8, mel lengths 400..300, text lengths 80..60.

The decoder is replaced by a tiny surrogate loss on z (as in the Coqui anchor script) so that the
reparameterised-sample path is exercised. Memory is the increase of the process's peak resident set
size (``resource.getrusage(...).ru_maxrss``) from just before the first step to the end: tracemalloc
cannot see torch's C++ allocations.

Side by side (``--side-by-side``, run with a Python that has coqui-tts 0.28 installed, e.g. the
separate venv with coqui-tts 0.28): our module, our module with plain ``nn.BatchNorm2d`` (statistics that see the
padding; shows what exact masking costs) and Coqui's ``CapacitronVAE`` layer on the ``b8`` workload,
alternating steps in one process so that all three see the same machine load.

Beta sweep (``--beta-sweep``): the toy task of tests/test_capacitron_convergence.py under several beta
optimisers; prints the mean |KL / C - 1| over steps 300-600 and the KL over the last 100 steps.

    .venv/bin/python bench/bench_capacitron.py                 # speed, 2 threads
    .venv/bin/python bench/bench_capacitron.py --beta-sweep    # ~2-4 min on 2 cores
    ../coqui-venv/bin/python bench/bench_capacitron.py --side-by-side --threads 2 --repeats 15
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # our package, also from another venv
from prosody_vae.prosody.capacity import CapacityObjective
from prosody_vae.prosody.vae import CapacitronVAE

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {
    "b32": dict(mel_lengths=[400] * 32, text_lengths=[80] * 32),
    "b8": dict(
        mel_lengths=[400, 386, 371, 357, 343, 329, 314, 300], text_lengths=[80, 77, 74, 71, 69, 66, 63, 60]
    ),
}
TEXT_EMBEDDING_DIM = 512


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_speed(name: str, *, repeats: int, warmup: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    spec = WORKLOADS[name]
    mel_lengths = torch.tensor(spec["mel_lengths"])
    text_lengths = torch.tensor(spec["text_lengths"])
    batch = len(mel_lengths)
    mel = torch.randn(batch, int(mel_lengths.max()), 80)
    text = torch.randn(batch, int(text_lengths.max()), TEXT_EMBEDDING_DIM)
    vae = CapacitronVAE(
        n_mels=80, latent_dim=128, text_embedding_dim=TEXT_EMBEDDING_DIM, text_summary_dim=128
    )
    objective = CapacityObjective(50.0)
    vae.train()

    def one_step() -> tuple[float, float]:
        start = time.perf_counter()
        out = vae.encode(mel, mel_lengths, text=text, text_lengths=text_lengths)
        parts = objective(1e-3 * out.z.square().sum(-1), out.kl)
        middle = time.perf_counter()
        (parts.loss + parts.beta_loss).backward()
        end = time.perf_counter()
        vae.zero_grad(set_to_none=True)
        objective.zero_grad(set_to_none=True)
        return middle - start, end - middle

    rss_before = _peak_rss_mib()
    for _ in range(warmup):
        one_step()
    runs = [one_step() for _ in range(repeats)]
    totals = [f + b for f, b in runs]
    return {
        "workload": name,
        "input": f"mel {tuple(mel.shape)}, text {tuple(text.shape)}",
        "threads": threads,
        "params": sum(p.numel() for p in vae.parameters()),
        "repeats": repeats,
        "fwd_bwd_median_s": round(statistics.median(totals), 4),
        "fwd_bwd_min_s": round(min(totals), 4),
        "fwd_bwd_max_s": round(max(totals), 4),
        "fwd_median_s": round(statistics.median(f for f, _ in runs), 4),
        "bwd_median_s": round(statistics.median(b for _, b in runs), 4),
        "peak_rss_increase_mib": round(_peak_rss_mib() - rss_before, 1),
        "torch": torch.__version__,
    }


def run_side_by_side(*, repeats: int, threads: int) -> None:
    from torch import nn
    from TTS.tts.layers.tacotron.capacitron_layers import CapacitronVAE as CoquiVAE  # measuring only

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    mel_lengths = torch.tensor(WORKLOADS["b8"]["mel_lengths"])
    text_lengths = torch.tensor(WORKLOADS["b8"]["text_lengths"])
    mel, text = torch.randn(8, 400, 80), torch.randn(8, 80, TEXT_EMBEDDING_DIM)
    objective = CapacityObjective(50.0)

    class PlainNorm(nn.BatchNorm2d):
        def forward(self, x, mask):  # statistics over padding too, as in Coqui
            return super().forward(x)

    ours, plain = (
        CapacitronVAE(n_mels=80, latent_dim=128, text_embedding_dim=TEXT_EMBEDDING_DIM) for _ in "ab"
    )
    plain.reference_encoder.norms = nn.ModuleList(
        PlainNorm(n.num_features) for n in plain.reference_encoder.norms
    )
    coqui = CoquiVAE(
        num_mel=80,
        capacitron_VAE_embedding_dim=128,
        encoder_output_dim=TEXT_EMBEDDING_DIM,
        reference_encoder_out_dim=128,
        text_summary_embedding_dim=128,
    )

    def ours_step(vae):
        out = vae.encode(mel, mel_lengths, text=text, text_lengths=text_lengths)
        parts = objective(1e-3 * out.z.square().sum(-1), out.kl)
        (parts.loss + parts.beta_loss).backward()

    def coqui_step(vae):  # the loss terms of Coqui's own training step
        z, posterior, prior, beta = vae(reference_mel_info=[mel, mel_lengths], text_info=[text, text_lengths])
        excess = torch.distributions.kl_divergence(posterior, prior).mean() - 50.0
        beta = torch.nn.functional.softplus(beta)[0]
        (-beta * excess.detach()).backward()
        (beta.detach() * excess / (400 * 80) + 1e-3 * z.pow(2).mean()).backward()

    runs = {
        "ours": (ours, ours_step),
        "ours, plain BatchNorm2d": (plain, ours_step),
        "coqui 0.28": (coqui, coqui_step),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(repeats + 2):  # 2 warm-up rounds
        for name, (vae, step) in runs.items():
            vae.train()
            start = time.perf_counter()
            step(vae)
            if i >= 2:
                times[name].append(time.perf_counter() - start)
            vae.zero_grad(set_to_none=True)
            objective.zero_grad(set_to_none=True)
    reference = statistics.median(times["coqui 0.28"])
    for name, values in times.items():
        params = sum(p.numel() for p in runs[name][0].parameters())
        median = statistics.median(values)
        print(
            f"{name}: {params} params, fwd+bwd median {median:.4f} s (min {min(values):.4f}), "
            f"{median / reference:.2f}x coqui; {threads} threads, {repeats} alternating repeats"
        )


def run_beta_sweep(steps_note: str = "600 steps, seeds 0 and 1") -> None:
    path = ROOT / "tests" / "test_capacitron_convergence.py"
    spec = importlib.util.spec_from_file_location("capacitron_convergence", path)
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    torch.set_num_threads(1)
    settings = [
        ("sgd", 1e-5),
        ("sgd", 1e-4),
        ("sgd", 1e-3),
        ("adam", 1e-2),
        ("adam", toy.RECOMMENDED_BETA_LR),
    ]
    print(f"| beta optimiser | C | mean abs(KL/C - 1), steps 300-600 | KL, last 100 steps | ({steps_note})")
    print("|---|---|---|---|")
    for capacity in (5.0, 20.0):
        for optimizer, lr in settings:
            deviations, tails = [], []
            for seed in (0, 1):
                kl = toy._train(capacity, seed=seed, beta_optimizer=optimizer, beta_lr=lr)["kl"]
                deviations.append(sum(abs(k / capacity - 1) for k in kl[300:]) / len(kl[300:]))
                tails.append(sum(kl[-100:]) / 100)
            print(
                f"| {optimizer} lr {lr:g} | {capacity:g} | "
                + " / ".join(f"{d:.1%}" for d in deviations)
                + " | "
                + " / ".join(f"{t:.2f}" for t in tails)
                + " |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), help="run one workload in this process")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beta-sweep", action="store_true")
    parser.add_argument("--side-by-side", action="store_true")
    args = parser.parse_args()
    if args.beta_sweep:
        run_beta_sweep()
    elif args.side_by_side:
        run_side_by_side(repeats=args.repeats, threads=args.threads)
    elif args.workload:
        print(
            json.dumps(
                run_speed(args.workload, repeats=args.repeats, warmup=args.warmup, threads=args.threads)
            )
        )
    else:
        for name in WORKLOADS:  # isolated processes: each peak RSS is its own
            command = [sys.executable, __file__, "--workload", name, "--repeats", str(args.repeats)]
            command += ["--warmup", str(args.warmup), "--threads", str(args.threads)]
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
