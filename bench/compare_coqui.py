"""Equal-size comparison with the reference implementation: alternating runs, one table of ratios.

Runs ``bench/bench_training_step.py`` (ours, by default at ``bench/conf/coqui_size.yaml``, the
reference's layer sizes) and ``bench/bench_coqui_capacitron.py`` (Coqui TTS 0.28 Tacotron2-Capacitron)
on the same workload, each phase of each side in a process of its own, and prints per-round figures,
medians over rounds and the ratios ours / reference against the targets of the equal-size
comparison: training step at least 1.5x faster, decoder step at least 2x faster, peak training RSS
at most 0.75x.

Why it is run this way:

* **Alternating, order swapped every round.** Absolute times on a shared machine drift by tens of
  percent within minutes. Each ratio is taken between two runs that sat next to each other (ours then
  the reference in odd rounds, the reference then ours in even ones, so that neither side always gets
  the warmer or the quieter slot), and the summary is the median of those per-round ratios.
* **One process per phase and side.** Peak RSS (``ru_maxrss``) is a process's high-water mark, so a
  training step and inference measured in one process would share it; a fresh process per run also
  keeps allocator state from leaking from one run into the next.
* **The same thread count everywhere.** ``--threads`` goes to both scripts and to ``OMP_NUM_THREADS``
  / ``MKL_NUM_THREADS`` of every child, so neither side's runtime can pick its own.
* **A disturbance check.** Each run records its CPU time (user + system, from ``RUSAGE_CHILDREN``)
  against its wall time and the 1-minute load average before it. With one thread on a quiet machine
  ``cpu/wall`` is close to 1; well below 1 means other processes took the core and that run's times
  are inflated. The full comparison is meant for an otherwise idle machine.

    .venv/bin/python bench/compare_coqui.py                           # 3 rounds, full workload
    .venv/bin/python bench/compare_coqui.py --rounds 1 --steps 3 --warmup 1 --infer-runs 1   # dry run
    .venv/bin/python bench/compare_coqui.py --ours-precision bf16,int8 --ours-low-memory  # the options
    .venv/bin/python bench/compare_coqui.py --ours-allocator system --coqui-allocator jemalloc  # allocators
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OURS_SCRIPT = BENCH / "bench_training_step.py"
COQUI_SCRIPT = BENCH / "bench_coqui_capacitron.py"
SIDES = ("ours", "coqui")
PHASES = ("train", "infer")
# (figure, key in the phase's JSON, our phase, target on ours / reference, "<=" or ">=" on that ratio);
# the reference's phase is the same without a precision suffix ("infer-int8" is compared with "infer").
FIGURES = (
    ("training step, s", "train_s_median", "train", 1 / 1.5, "<="),
    ("decoder step, ms", "ms_per_decoder_step", "infer", 1 / 2.0, "<="),
    ("peak RSS training, MiB", "peak_rss_mib", "train", 0.75, "<="),
    ("peak RSS inference, MiB", "peak_rss_mib", "infer", None, ""),
)
REDUCED_PRECISIONS = ("bf16", "int8")  # our --precision choices besides fp32 (bench_training_step.py)
PARAMETER_TOLERANCE = 0.05  # the equal-size comparison holds the parameter counts within 5 %


@dataclass(frozen=True)
class Run:
    """One phase of one side in one round: the script's JSON line plus how undisturbed it ran."""

    round: int
    side: str
    phase: str
    result: dict
    wall_s: float  # the whole child process, start-up and model building included
    cpu_s: float  # its user + system CPU time
    load_before: float  # 1-minute load average when it started


def _run(cmd: list[str], *, threads: int, round_: int, side: str, phase: str, preload: str = "") -> Run:
    """Run one child to completion and keep its last stdout line (the phase's JSON)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if preload:
        env["LD_PRELOAD"] = preload
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        # the child's own traceback says what went wrong; the command says how to reproduce it
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"error: exit status {proc.returncode} from: {' '.join(cmd)}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"error: no output from: {' '.join(cmd)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(round_, side, phase, json.loads(lines[-1]), wall, cpu, load)


def _commands(args: argparse.Namespace) -> dict[tuple[str, str], list[str]]:
    """The child command of each (side, phase); both scripts take the same workload flags."""
    common = ["--threads", str(args.threads), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    common += ["--max-steps", str(args.max_steps), "--infer-warmup", str(args.infer_warmup)]
    common += ["--infer-runs", str(args.infer_runs)]
    commands = {}
    for phase in PHASES:
        commands["ours", phase] = [
            str(args.ours_python),
            str(OURS_SCRIPT),
            "--config",
            args.config,
            "--phase",
            phase,
            *common,
        ]
        commands["coqui", phase] = [str(args.coqui_python), str(COQUI_SCRIPT), "--phase", phase, *common]
    if args.ours_low_memory:
        commands["ours", "train"].append("--low-memory")
    commands["ours", "train"] += ["--allocator", args.ours_allocator]
    for phase in PHASES:
        if phase != "train":
            commands["ours", phase] += ["--allocator", "system"]  # inference is not a training command
    for precision in args.ours_precision:
        commands["ours", f"infer-{precision}"] = [*commands["ours", "infer"], "--precision", precision]
    return commands


def _value(runs: list[Run], round_: int, side: str, phase: str, key: str) -> float:
    (run,) = (r for r in runs if r.round == round_ and r.side == side and r.phase == phase)
    return float(run.result[key])


def _report(runs: list[Run], rounds: int) -> dict:
    """Print the per-round table and the summary; return the summary as a dict."""
    print("\nper run (cpu/wall near 1 with one thread = undisturbed; load = 1-min average before)")
    print(f"{'round':>5} {'side':<6} {'phase':<10} {'median':>15} {'RSS MiB':>8} {'cpu/wall':>8} {'load':>5}")
    for r in runs:
        if r.phase == "train":
            figure = f"{r.result['train_s_median']:.3f} s/step"
        else:
            figure = f"{r.result['ms_per_decoder_step']:.3f} ms/step"
        print(
            f"{r.round:>5} {r.side:<6} {r.phase:<10} {figure:>15} "
            f"{r.result['peak_rss_mib']:>8.0f} {r.cpu_s / r.wall_s:>8.2f} {r.load_before:>5.2f}"
        )

    params = {side: _value(runs, 1, side, "train", "params") for side in SIDES}
    param_ratio = params["ours"] / params["coqui"]
    summary: dict = {"params": params, "param_ratio": param_ratio, "figures": {}}
    print(
        f"\nparameters: ours {params['ours'] / 1e6:.2f} M, reference {params['coqui'] / 1e6:.2f} M, "
        f"ratio {param_ratio:.3f}"
    )
    if abs(param_ratio - 1) > PARAMETER_TOLERANCE:
        print(f"warning: the parameter counts differ by more than {PARAMETER_TOLERANCE:.0%}: not equal size")

    print(f"\nmedians over {rounds} round(s); ratio = median of the per-round ratios ours / reference")
    print(f"{'figure':<30} {'ours':>9} {'reference':>9} {'ratio':>7} {'speed-up':>8} {'target':>8}  met")
    ours_phases = sorted({r.phase for r in runs if r.side == "ours"})
    figures = list(FIGURES)
    for phase in (p for p in ours_phases if p.startswith("infer-")):
        precision = phase.removeprefix("infer-")
        figures += [(f"decoder step, ms, {precision}", "ms_per_decoder_step", phase, 1 / 2.0, "<=")]
        figures += [(f"peak RSS inference, {precision}", "peak_rss_mib", phase, None, "")]
    for name, key, phase, target, sense in figures:
        ours = [_value(runs, k, "ours", phase, key) for k in range(1, rounds + 1)]
        theirs = [_value(runs, k, "coqui", phase.split("-")[0], key) for k in range(1, rounds + 1)]
        ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
        met = "" if target is None else ("yes" if ratio <= target else "no")
        target_text = "" if target is None else f"{sense} {target:.2f}"
        print(
            f"{name:<30} {statistics.median(ours):>9.3f} {statistics.median(theirs):>9.3f} "
            f"{ratio:>7.3f} {1 / ratio:>7.2f}x {target_text:>8}  {met}"
        )
        summary["figures"][name] = {
            "ours": ours,
            "reference": theirs,
            "ratio_median": ratio,
            "target_ratio": target,
            "met": None if target is None else ratio <= target,
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (>= 3 for the comparison)")
    parser.add_argument("--config", default="coqui_size", help="our configuration (bench_training_step.py)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="warm-up training steps")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--max-steps", type=int, default=500, help="decoder steps at inference")
    parser.add_argument("--infer-warmup", type=int, default=1)
    parser.add_argument("--infer-runs", type=int, default=3)
    parser.add_argument("--ours-python", type=Path, default=REPO / ".venv" / "bin" / "python")
    parser.add_argument("--coqui-python", type=Path, default=REPO.parent / "coqui-venv" / "bin" / "python")
    parser.add_argument("--json", type=Path, help="also write every run and the summary here")
    parser.add_argument(
        "--ours-precision",
        default="",
        help="also time our decoder with these reduced precisions, comma-separated (bf16, int8), each "
        "in its own process next to the fp32 run and compared with the reference's (fp32) step",
    )
    parser.add_argument(
        "--ours-low-memory", action="store_true", help="train ours as prosody-vae train --low-memory does"
    )
    parser.add_argument(
        "--ours-allocator",
        choices=("auto", "jemalloc", "tcmalloc", "system"),
        default="auto",
        help="our training's C allocator, as prosody-vae train --allocator (default auto: jemalloc when installed)",
    )
    parser.add_argument(
        "--coqui-allocator",
        choices=("system", "jemalloc"),
        default="system",
        help="preload jemalloc into the reference's processes too (it does not do so itself)",
    )
    args = parser.parse_args()
    args.ours_precision = [p for p in args.ours_precision.split(",") if p]
    unknown = sorted(set(args.ours_precision) - set(REDUCED_PRECISIONS))
    if unknown:
        parser.error(f"--ours-precision: unknown {unknown}; choose from {list(REDUCED_PRECISIONS)}")
    if args.rounds < 1 or args.threads < 1 or args.steps < 1 or args.infer_runs < 1:
        parser.error("--rounds, --threads, --steps and --infer-runs must be >= 1")
    for flag, python in (("--ours-python", args.ours_python), ("--coqui-python", args.coqui_python)):
        if not python.is_file():
            hint = " (python -m venv ../coqui-venv && ../coqui-venv/bin/pip install -e '.[coqui]')"
            parser.error(f"{flag} {python} does not exist{hint if flag == '--coqui-python' else ''}")

    commands = _commands(args)
    coqui_preload = ""
    if args.coqui_allocator == "jemalloc":
        from prosody_vae.training.allocator import find_allocator

        coqui_preload = find_allocator("jemalloc") or ""
        if not coqui_preload:
            parser.error("--coqui-allocator jemalloc: jemalloc is not installed")
    runs: list[Run] = []
    for round_ in range(1, args.rounds + 1):
        order = SIDES if round_ % 2 == 1 else SIDES[::-1]
        for phase in PHASES:
            for side in order:
                extra = (
                    [f"infer-{p}" for p in args.ours_precision] if side == "ours" and phase == "infer" else []
                )
                for run_phase in [phase, *extra]:
                    run = _run(
                        commands[side, run_phase],
                        threads=args.threads,
                        round_=round_,
                        side=side,
                        phase=run_phase,
                        preload=coqui_preload if side == "coqui" else "",
                    )
                    runs.append(run)
                    print(f"round {round_} {side} {run_phase}: {json.dumps(run.result)}", flush=True)
    summary = _report(runs, args.rounds)
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": [asdict(r) for r in runs], "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
