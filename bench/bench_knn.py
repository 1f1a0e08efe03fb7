"""Time the associative prior's K-nearest-neighbour look-up against code banks of several sizes.

Measures :meth:`CodeBank.nearest` (distances by one matmul, id/empty-row masking, ``torch.topk``)
and :meth:`AssociativePrior.neighbour_context` (the same plus the uniform draw and the gather) for a
batch of queries, and prints the median over repeats, in milliseconds.

    .venv/bin/python bench/bench_knn.py                      # B=64, D=128, K=5, banks 10k/50k/100k
    .venv/bin/python bench/bench_knn.py --threads 1 --repeats 50
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from prosody_vae.prosody.priors import AssociativePrior


def _median_ms(function, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


@torch.no_grad()
def _bench_bank(size: int, args: argparse.Namespace) -> tuple[float, float]:
    """Median ms of ``nearest`` and ``neighbour_context`` against a bank of ``size`` random codes."""
    prior = AssociativePrior(args.dim, k_neighbours=args.k, bank_size=size)
    prior.update_bank(torch.randn(size, args.dim), torch.arange(size))
    ids = torch.randint(size, (args.batch,))
    queries = prior.bank.codes[ids] + 0.01 * torch.randn(args.batch, args.dim)
    nearest = _median_ms(lambda: prior.bank.nearest(queries, ids, args.k), args.repeats, args.warmup)
    context = _median_ms(lambda: prior.neighbour_context(queries, ids), args.repeats, args.warmup)
    return nearest, context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--banks", type=int, nargs="+", default=[10_000, 50_000, 100_000], help="bank sizes N"
    )
    parser.add_argument("--batch", type=int, default=64, help="queries per look-up (B)")
    parser.add_argument("--dim", type=int, default=128, help="latent size D")
    parser.add_argument("--k", type=int, default=5, help="neighbours K")
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up calls")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 keeps torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, fp32, B={args.batch}, D={args.dim}, K={args.k}, "
        f"median of {args.repeats}"
    )
    print(f"{'bank N':>8} | {'nearest (ms)':>12} | {'neighbour_context (ms)':>22} | {'ms / query':>10}")
    for size in args.banks:
        nearest, context = _bench_bank(size, args)
        print(f"{size:>8} | {nearest:>12.2f} | {context:>22.2f} | {nearest / args.batch:>10.3f}")


if __name__ == "__main__":
    main()
