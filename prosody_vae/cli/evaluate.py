"""``prosody-vae evaluate``: compare synthesised speech with references (see prosody_vae.evaluation).

Two jobs, requested together or separately:

* pairs: ``--ref-dir R --out-dir O`` (matched by file stem), ``--ref-scp a.scp --out-scp b.scp``
  (``id path`` lists, matched by id) or ``--manifest synth/manifest.jsonl``; prints a table and,
  with ``--report DIR``, writes metrics.csv, summary.json and figures. Manifest pairs whose target
  voice (``speaker``) and reference voice (``reference_speaker``, or ``--reference-voices``: corpus
  manifests naming the voice of each reference file) are known are also scored across voices:
  correlations relative to each voice's mean, and speaker-identity checks
  (:mod:`prosody_vae.evaluation.speakers`);
* model diagnostics: ``--diagnostics`` (the shipped model) or ``--checkpoint ckpt.pt`` on a data
  split (KL per dimension vs C, beta, active units) and ``--bound iwae --k 1,5,50``; written to
  ``DIR/diagnostics.json`` with ``--report``.

Exit status: 0 when done (skipped items are listed, not fatal), 1 with ``--strict`` when any item was
skipped, 2 for a user error (no usable pair, bad options, unreadable checkpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prosody_vae.cli._registry import command, model_path, progress, set_threads


def _ks(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k must be comma-separated integers, got {text!r}") from None
    if not ks or any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(f"--k must list positive integers, got {text!r}")
    return ks


def _arguments(p: argparse.ArgumentParser) -> None:
    pairs = p.add_argument_group("pairs (one source)")
    pairs.add_argument("--ref-dir", type=Path, help="folder of reference audio (with --out-dir)")
    pairs.add_argument("--out-dir", type=Path, help="folder of outputs, matched to references by file stem")
    pairs.add_argument("--ref-scp", type=Path, help="'id path' list of references (with --out-scp)")
    pairs.add_argument("--out-scp", type=Path, help="'id path' list of outputs, matched by id")
    pairs.add_argument("--manifest", type=Path, help="synthesis manifest (JSONL); null references: unpaired")
    pairs.add_argument("--sample-rate", type=int, default=22050, help="analysis rate; files are resampled")
    pairs.add_argument("--f0-min", type=float, default=50.0, help="lowest F0 searched (Hz)")
    pairs.add_argument("--f0-max", type=float, default=600.0, help="highest F0 searched (Hz)")
    pairs.add_argument("--num-workers", type=int, default=2, help="scoring processes (F0 extraction)")
    pairs.add_argument("--plots", type=int, default=6, help="F0 overlay figures for the first N pairs")
    pairs.add_argument("--strict", action="store_true", help="exit 1 if any item was skipped")
    pairs.add_argument(
        "--reference-voices",
        nargs="+",
        type=Path,
        default=None,
        metavar="MANIFEST",
        help="corpus manifests whose speaker field names each reference's voice (with --manifest): "
        "pairs with a reference voice and a target voice (the synthesis manifest's speaker) are also "
        "scored across voices",
    )
    model = p.add_argument_group("model diagnostics (with --diagnostics, --checkpoint or --bound)")
    model.add_argument(
        "--diagnostics", action="store_true", help="measure a model on --data/--split (see --checkpoint)"
    )
    model.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="the model to measure (default with --diagnostics or --bound: the shipped model)",
    )
    model.add_argument(
        "--data", type=Path, default=None, help="prepared data (default: the model config's data.root)"
    )
    model.add_argument("--split", default="valid", help="split of the prepared data")
    model.add_argument(
        "--max-items", type=int, default=None, help="first N utterances of the split (default: all)"
    )
    model.add_argument("--batch-size", type=int, default=8, help="utterances per batch")
    model.add_argument("--au-threshold", type=float, default=0.01, help="active-unit variance threshold")
    model.add_argument("--bound", choices=["iwae"], default=None, help="also compute a likelihood bound")
    model.add_argument("--k", type=_ks, default=[1, 5, 50], help="IWAE sample counts (default 1,5,50)")
    model.add_argument("--seed", type=int, default=0, help="seed of the z samples and dropout masks")
    model.add_argument("--device", default="cpu", help="torch device the model runs on")
    model.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--report", type=Path, default=None, help="folder for CSV, JSON and figures")


def _pairing(args: argparse.Namespace):
    from prosody_vae.evaluation import pairs_from_dirs, pairs_from_manifest, pairs_from_scp

    sources = {
        "--ref-dir/--out-dir": (args.ref_dir, args.out_dir),
        "--ref-scp/--out-scp": (args.ref_scp, args.out_scp),
        "--manifest": (args.manifest, args.manifest),
    }
    given = {name: pair for name, pair in sources.items() if any(v is not None for v in pair)}
    if len(given) > 1:
        raise ValueError(f"give one source of pairs, not {' and '.join(given)}")
    if not given:
        return None
    name, (first, second) = next(iter(given.items()))
    if first is None or second is None:
        raise ValueError(f"{name} must be given together")
    if name == "--manifest":
        pairing = pairs_from_manifest(first)
        if args.reference_voices:
            from prosody_vae.evaluation import label_reference_voices

            pairing = label_reference_voices(pairing, args.reference_voices)
        return pairing
    if args.reference_voices:
        raise ValueError("--reference-voices needs --manifest (a synthesis manifest names the target voices)")
    return pairs_from_dirs(first, second) if name == "--ref-dir/--out-dir" else pairs_from_scp(first, second)


@command(
    "evaluate",
    help="score outputs against references; model diagnostics and IWAE bounds",
    arguments=_arguments,
)
def evaluate(args: argparse.Namespace) -> int:
    from prosody_vae.evaluation import evaluate_pairs, model_diagnostics, write_json, write_report

    set_threads(args)
    diagnostics_wanted = args.diagnostics or args.checkpoint is not None or args.bound is not None
    if diagnostics_wanted:
        from prosody_vae.devices import resolve_device

        resolve_device(args.device)  # a missing GPU: one line, before any work
    if args.plots < 0 or args.num_workers < 0:
        raise ValueError(f"--plots and --num-workers must be >= 0, got {args.plots} and {args.num_workers}")
    pairing = _pairing(args)
    if pairing is None and not diagnostics_wanted:
        raise ValueError(
            "nothing to evaluate: give pairs (--ref-dir/--out-dir, --ref-scp/--out-scp, --manifest), "
            "or --diagnostics (the shipped model) or --checkpoint"
        )
    skipped = 0
    if pairing is not None:
        result = evaluate_pairs(
            pairing,
            sample_rate=args.sample_rate,
            f0_min=args.f0_min,
            f0_max=args.f0_max,
            num_workers=args.num_workers,
            keep_tracks=args.plots if args.report is not None else 0,
            progress=progress(args),
        )
        print(result.format_table())
        skipped = len(result.problems)
        if args.report is not None:
            written = write_report(result, args.report, plots=args.plots)
            print(f"wrote {len(written)} files to {args.report}")
    if diagnostics_wanted:
        diagnostics = model_diagnostics(
            model_path(args.checkpoint),
            data_root=args.data,
            split=args.split,
            max_items=args.max_items,
            batch_size=args.batch_size,
            au_threshold=args.au_threshold,
            bound_ks=args.k if args.bound == "iwae" else (),
            seed=args.seed,
            device=args.device,
            progress=progress(args),
        )
        print(diagnostics.format())
        if args.report is not None:
            args.report.mkdir(parents=True, exist_ok=True)
            print(f"wrote {write_json(args.report / 'diagnostics.json', diagnostics.to_dict())}")
    return 1 if args.strict and skipped else 0
