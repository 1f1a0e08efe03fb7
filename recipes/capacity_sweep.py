#!/usr/bin/env python3
"""Evaluate models trained at different capacities (and priors) on the same held-out material.

    .venv/bin/python recipes/capacity_sweep.py --out exp/sweep/report \
        C2=exp/sweep/C2/checkpoints/step_1500.pt C10=exp/sweep/C10/checkpoints/step_1500.pt ...

For each model and each of ``--n`` held-out references (the same ones for every model):

* same-text transfer: the reference's own sentence spoken with its posterior mean, scored against the
  reference (FFE, GPE, VDE, MCD-DTW, log-F0 RMSE: the Capacitron paper's similarity measures);
* inter-text transfer: another held-out sentence with the reference's posterior mean; the
  utterance-level F0 mean, F0 range and speaking rate of output and reference are correlated;
* prior samples: the reference's sentence with z drawn from the prior, scored like same-text
  transfer: the baseline a transfer must beat;
* diversity: ``--samples`` prior samples for each of ``--diversity-texts`` sentences; the spread
  (standard deviation within a sentence, averaged over sentences) of F0 mean and speaking rate;
* diagnostics on the validation split: KL per dimension and in total vs C, beta, active units and
  IWAE-k bounds (``--ks``).

Writes ``sweep.json``, ``sweep.md`` (tables) and ``sweep.png`` under ``--out``, and every wav with a
synthesis manifest per condition under ``--out/<name>/``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from prosody_vae.atomic import write_text_atomic
from prosody_vae.audio.vocoders import GriffinLimVocoder
from prosody_vae.data.espeak import phonemes
from prosody_vae.data.manifest import read_manifest
from prosody_vae.evaluation import evaluate_pairs, model_diagnostics
from prosody_vae.inference.synthesizer import Synthesizer

CONDITIONS = ("same_text", "inter_text", "prior")
SIMILARITY = ("ffe", "gpe", "vde", "mcd13", "log_f0_rmse_cents")
QUANTITIES = ("f0_mean_hz", "f0_range_st", "speaking_rate", "phones_per_s")


def _models(specs: list[str]) -> dict[str, Path]:
    models = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"expected NAME=CHECKPOINT, got {spec!r}")
        if not Path(path).is_file():
            raise SystemExit(f"{path}: checkpoint not found (model {name})")
        models[name] = Path(path)
    return models


def _synthesise(
    synth: Synthesizer, vocoder, texts: list[str], z: torch.Tensor, paths: list[Path], batch: int = 8
) -> list[bool]:
    """Speak texts[i] with z[i] into paths[i]; returns whether each output stopped by itself."""
    stopped = []
    for start in range(0, len(texts), batch):
        results = synth.synthesize(texts[start : start + batch], z[start : start + batch])
        for result, path in zip(results, paths[start : start + batch], strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, vocoder(result.mel).float().cpu().numpy(), synth.audio.sample_rate)
            stopped.append(result.stopped)
    return stopped


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
    return path


def _evaluate_model(name: str, checkpoint: Path, args, references, inter_texts, diversity_texts) -> dict:
    torch.manual_seed(args.seed)  # prior draws and prenet dropout
    synth = Synthesizer.from_checkpoint(checkpoint)
    vocoder = GriffinLimVocoder(synth.audio, n_iter=args.gl_iters)
    out = args.out / name
    features = [synth.reference_features(u.audio) for u in references]  # (mel, F0 or None)
    posterior = synth.embed_batch(
        [mel for mel, _ in features],
        texts=[u.text for u in references],
        f0s=[f0 for _, f0 in features],
    )
    z_prior = synth.model.prosody.sample_prior(len(references))
    plans = {
        "same_text": ([u.text for u in references], posterior.mean),
        "inter_text": (inter_texts, posterior.mean),
        "prior": ([u.text for u in references], z_prior),
    }
    record: dict = {"checkpoint": str(checkpoint)}
    reference_text = {u.id: u.text for u in references}
    n_phones = {t: len(phonemes(t)) for t in {u.text for u in references} | set(inter_texts)}
    for condition, (texts, z) in plans.items():
        paths = [out / condition / f"{u.id}.wav" for u in references]
        stopped = _synthesise(synth, vocoder, texts, z, paths)
        rows = [
            {
                "id": u.id,
                "output": str(p.resolve()),
                "reference": str(Path(u.audio).resolve()),
                "text": t,
                "reference_text": u.text,
                "kind": "sample" if condition == "prior" else "transfer",
            }
            for u, p, t in zip(references, paths, texts, strict=True)
        ]
        manifest = _write_manifest(out / condition / "manifest.jsonl", rows)
        from prosody_vae.evaluation import pairs_from_manifest

        result = evaluate_pairs(pairs_from_manifest(manifest), num_workers=args.num_workers)
        paired = result.paired()
        summary = result.summary(paired)
        correlations = result.correlations(paired)
        record[condition] = {
            "n": len(paired),
            "stopped": float(np.mean(stopped)),
            "problems": len(result.problems),
            "metrics": {m: summary[m].mean for m in SIMILARITY if m in summary},
            "ci": {m: (summary[m].ci_high - summary[m].ci_low) / 2 for m in SIMILARITY if m in summary},
            "correlations": {q: correlations[q].r for q in QUANTITIES if q in correlations},
        }
        # phones per second, counted as the corpus labels count them: the reference's own
        # sentence against the output's (often another) sentence
        rates = [
            (
                n_phones[reference_text[s.item.id]] / s.values["ref_duration_s"],
                n_phones[s.item.text] / s.values["out_duration_s"],
            )
            for s in paired
            if s.values.get("ref_duration_s") and s.values.get("out_duration_s")
        ]
        if len(rates) >= 3:
            record[condition]["correlations"]["phones_per_s"] = float(np.corrcoef(np.asarray(rates).T)[0, 1])
        print(f"[{name}] {condition}: {record[condition]['metrics']} r={record[condition]['correlations']}")

    # diversity of prior samples: the same sentence, several draws
    texts = [t for t in diversity_texts for _ in range(args.samples)]
    z = synth.model.prosody.sample_prior(len(texts))
    paths = [
        out / "diversity" / f"text{i // args.samples}_s{i % args.samples}.wav" for i in range(len(texts))
    ]
    _synthesise(synth, vocoder, texts, z, paths)
    result = evaluate_pairs([(None, p) for p in paths], num_workers=args.num_workers)
    by_path = {str(s.item.output): s.values for s in result.unpaired()}
    spread = {}
    for quantity in ("f0_mean_hz", "speaking_rate"):
        per_text = []
        for i in range(len(diversity_texts)):
            values = [
                by_path.get(str(p), {}).get(f"out_{quantity}")
                for p in paths[i * args.samples : (i + 1) * args.samples]
            ]
            values = [v for v in values if v is not None and np.isfinite(v)]
            if len(values) >= 2:
                per_text.append(float(np.std(values, ddof=1)))
        spread[quantity] = float(np.mean(per_text)) if per_text else None
    record["prior_spread"] = spread
    print(f"[{name}] prior spread: {spread}")

    diagnostics = model_diagnostics(checkpoint, split="valid", bound_ks=args.ks, seed=args.seed)
    record["diagnostics"] = diagnostics.to_dict()
    print(f"[{name}] diagnostics:\n{diagnostics.format()}")
    return record


def _table(records: dict[str, dict]) -> str:
    names = list(records)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, values: list) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    fmt = lambda v, d=2: "n/a" if v is None else f"{v:.{d}f}"  # noqa: E731
    row("capacity C (nats)", [fmt(r["diagnostics"]["capacity"], 0) for r in records.values()])
    row("prior", [r["diagnostics"]["prior"] for r in records.values()])
    row("KL on valid (nats)", [fmt(r["diagnostics"]["kl_total"]["mean"], 1) for r in records.values()])
    row("beta", [fmt(r["diagnostics"]["beta"]) for r in records.values()])
    row(
        "active units",
        [f"{r['diagnostics']['active_units']}/{r['diagnostics']['latent_dim']}" for r in records.values()],
    )
    for key in next(iter(records.values()))["diagnostics"]["bounds"]:
        row(
            f"{key.replace('_', '-').upper()} bound (nats/utt)",
            [fmt(r["diagnostics"]["bounds"][key]["bound"]["mean"], 0) for r in records.values()],
        )
    for condition in ("same_text", "prior"):
        for metric in SIMILARITY:
            row(
                f"{condition.replace('_', '-')}: {metric}",
                [
                    fmt(r[condition]["metrics"].get(metric), 3 if metric in ("ffe", "gpe", "vde") else 1)
                    for r in records.values()
                ],
            )
    for condition in CONDITIONS:
        for quantity in QUANTITIES:
            row(
                f"{condition.replace('_', '-')}: r {quantity}",
                [fmt(r[condition]["correlations"].get(quantity)) for r in records.values()],
            )
    for quantity, value in (("f0_mean_hz", "F0 mean, Hz"), ("speaking_rate", "speaking rate")):
        row(
            f"prior sample spread ({value})", [fmt(r["prior_spread"].get(quantity)) for r in records.values()]
        )
    return "\n".join(lines)


def _figure(records: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(records)
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    panels = (
        ("FFE (lower = closer)", lambda r, c: r[c]["metrics"].get("ffe"), ("same_text", "prior")),
        ("MCD13-DTW (lower = closer)", lambda r, c: r[c]["metrics"].get("mcd13"), ("same_text", "prior")),
        ("r, F0 mean (ref vs out)", lambda r, c: r[c]["correlations"].get("f0_mean_hz"), CONDITIONS),
        ("prior spread of F0 mean (Hz)", lambda r, c: r["prior_spread"].get("f0_mean_hz"), ("prior",)),
    )
    for ax, (title, get, conditions) in zip(axes, panels, strict=True):
        width = 0.8 / len(conditions)
        for i, condition in enumerate(conditions):
            values = [get(records[n], condition) for n in names]
            values = [np.nan if v is None else v for v in values]
            ax.bar(x + i * width - 0.4 + width / 2, values, width, label=condition.replace("_", "-"))
        ax.set_xticks(x, names)
        ax.set_title(title, fontsize=10)
        if len(conditions) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _training_curves(models: dict[str, Path], path: Path) -> None:
    """KL against C and beta over training for every run whose log.jsonl sits beside its checkpoints."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_kl, ax_beta) = plt.subplots(1, 2, figsize=(12, 3.6))
    for index, (name, checkpoint) in enumerate(models.items()):
        log = checkpoint.parent.parent / "log.jsonl"
        if not log.is_file():
            continue
        records = [json.loads(line) for line in log.read_text().splitlines()]
        records = [r for r in records if "kl" in r and "beta" in r and "capacity" in r]
        if not records:
            continue
        steps = [r["step"] for r in records]
        color = f"C{index}"
        ax_kl.plot(steps, [r["kl"] for r in records], color=color, label=name, linewidth=1)
        ax_kl.axhline(records[-1]["capacity"], color=color, linestyle="--", linewidth=0.8)
        ax_beta.plot(steps, [r["beta"] for r in records], color=color, label=name, linewidth=1)
    ax_kl.set(xlabel="step", ylabel="KL, nats per utterance (dashed: C)", yscale="log", title="KL vs C")
    ax_beta.set(xlabel="step", ylabel="beta", yscale="log", title="Lagrange multiplier")
    ax_kl.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=CHECKPOINT")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=30, help="held-out references")
    parser.add_argument("--diversity-texts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=3, help="prior samples per diversity sentence")
    parser.add_argument("--ks", default="1,5,50", help="IWAE sample counts")
    parser.add_argument("--gl-iters", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--redo", action="store_true", help="evaluate models already in sweep.json again")
    args = parser.parse_args(argv)
    args.ks = [int(k) for k in args.ks.split(",") if k]
    torch.set_num_threads(args.threads)
    models = _models(args.models)
    args.out.mkdir(parents=True, exist_ok=True)

    first = Synthesizer.from_checkpoint(next(iter(models.values())))
    held_out = [u for u in read_manifest(Path(first.config.data.root) / "splits" / "test.jsonl") if u.labels]
    rng = np.random.default_rng(args.seed)
    references = [
        held_out[i] for i in sorted(rng.choice(len(held_out), size=min(args.n, len(held_out)), replace=False))
    ]
    texts = sorted({u.text for u in held_out})
    # inter-text: the next distinct held-out sentence after the reference's own
    inter_texts = [texts[(texts.index(u.text) + 1) % len(texts)] for u in references]
    diversity_texts = texts[: args.diversity_texts]

    # models already evaluated from the same checkpoint are kept (the sweep can grow run by run)
    saved = json.loads((args.out / "sweep.json").read_text()) if (args.out / "sweep.json").is_file() else {}
    records = {}
    for name, checkpoint in models.items():
        if saved.get(name, {}).get("checkpoint") == str(checkpoint) and not args.redo:
            print(f"[{name}] already evaluated ({args.out / 'sweep.json'}); --redo to evaluate again")
            records[name] = saved[name]
            continue
        records[name] = _evaluate_model(name, checkpoint, args, references, inter_texts, diversity_texts)
        write_text_atomic(args.out / "sweep.json", json.dumps({**saved, **records}, indent=2))
    write_text_atomic(args.out / "sweep.md", _table(records) + "\n")
    _figure(records, args.out / "sweep.png")
    _training_curves(models, args.out / "sweep_training.png")
    print(_table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
