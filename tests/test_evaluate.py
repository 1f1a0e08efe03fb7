"""prosody_vae.evaluation and ``prosody-vae evaluate``: pairing, scoring, summaries, diagnostics, exit codes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from prosody_vae.cli import main
from prosody_vae.data.manifest import read_manifest
from prosody_vae.evaluation import (
    correlate,
    evaluate_pairs,
    model_diagnostics,
    pairs_from_dirs,
    pairs_from_manifest,
    pairs_from_scp,
    summarise,
)

# ---- statistics against hand computations -------------------------------------------------------


def test_summary_matches_a_hand_computed_t_interval() -> None:
    # values 1, 2, 3, 4, 10: mean 4, squared deviations 9+4+1+0+36 = 50, s^2 = 50/4 = 12.5;
    # t(0.975, df=4) = 2.7764 (table), half-width = 2.7764 * sqrt(12.5) / sqrt(5) = 4.3898
    s = summarise([1.0, 2.0, 3.0, 4.0, 10.0, math.nan])
    assert s.mean == pytest.approx(4.0)
    assert s.std == pytest.approx(math.sqrt(12.5))
    assert (s.ci_low, s.ci_high) == pytest.approx((4.0 - 4.3898, 4.0 + 4.3898), abs=1e-3)
    assert (s.n, s.n_missing) == (5, 1)
    # a 90 % interval is narrower: t(0.95, df=4) = 2.1318
    assert summarise([1.0, 2.0, 3.0, 4.0, 10.0], level=0.9).ci_high == pytest.approx(4.0 + 3.3706, abs=1e-3)


def test_summary_of_too_few_values() -> None:
    one = summarise([3.0])
    assert one.mean == 3.0 and math.isnan(one.ci_low) and one.n == 1
    assert summarise([math.nan, math.nan]).n_missing == 2 and math.isnan(summarise([]).mean)


def test_correlation_and_its_fisher_interval() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0, math.nan]
    y = [2.0, 1.0, 4.0, 3.0, 5.0, 7.0]
    c = correlate(x, y)
    # hand: deviations (-2,-1,0,1,2) and (-1,-2,1,0,2): sum of products 8, sums of squares 10 and 10
    assert c.r == pytest.approx(0.8) and c.n == 5
    z, half = math.atanh(0.8), 1.959964 / math.sqrt(2)
    assert (c.ci_low, c.ci_high) == pytest.approx((math.tanh(z - half), math.tanh(z + half)), abs=1e-5)
    assert math.isnan(correlate([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]).r)


# ---- pairing and scoring on real speech ---------------------------------------------------------


@pytest.fixture(scope="module")
def wavs(tiny_prepared) -> list[Path]:
    return [Path(u.audio) for u in read_manifest(tiny_prepared / "splits" / "train.jsonl")[:3]]


def _copy(files: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


def test_identical_folders_give_zero_error(wavs, tmp_path) -> None:
    ref, out = _copy(wavs, tmp_path / "ref"), _copy(wavs, tmp_path / "out")
    result = evaluate_pairs(pairs_from_dirs(ref, out), num_workers=2)
    assert [s.item.id for s in result.paired()] == sorted(p.stem for p in wavs)  # order kept by the pool
    for score in result.paired():
        v = score.values
        assert v["ffe"] == 0 and v["gpe"] == 0 and v["vde"] == 0
        assert v["mcd13"] == pytest.approx(0, abs=1e-9) and v["mcd_db"] == pytest.approx(0, abs=1e-9)
        assert v["duration_ratio"] == pytest.approx(1.0) and v["f0_correlation"] == pytest.approx(1.0)
        assert v["ref_f0_mean_hz"] == v["out_f0_mean_hz"] > 50
    assert result.summary(result.paired())["ffe"].mean == 0 and not result.problems


def test_shifted_pitch_is_measured(wavs, tmp_path) -> None:
    import librosa
    import soundfile as sf

    wav, rate = sf.read(wavs[0])
    sf.write(tmp_path / "up.wav", librosa.effects.pitch_shift(wav, sr=rate, n_steps=4.0), rate)
    result = evaluate_pairs([(wavs[0], tmp_path / "up.wav")], num_workers=0)
    v = result.paired()[0].values
    # +4 semitones is 400 cents and a 26 % F0 ratio: above the 20 % gross-error threshold
    assert v["log_f0_rmse_cents"] == pytest.approx(400, abs=60)
    assert v["gpe"] > 0.8 and v["out_f0_mean_hz"] / v["ref_f0_mean_hz"] == pytest.approx(
        2 ** (4 / 12), rel=0.05
    )


def test_missing_and_corrupt_files_are_reported_and_skipped(wavs, tmp_path) -> None:
    ref = _copy(wavs, tmp_path / "ref")
    out = _copy(wavs[:2], tmp_path / "out")  # third output missing
    (out / wavs[1].name).write_bytes(b"RIFF not really a wav file")  # second output corrupt
    result = evaluate_pairs(pairs_from_dirs(ref, out), num_workers=0)
    assert [s.item.id for s in result.paired()] == [wavs[0].stem]
    reasons = {p.id: p for p in result.problems}
    assert set(reasons) == {wavs[1].stem, wavs[2].stem}
    assert reasons[wavs[2].stem].reason == "no output with this id"
    assert "cannot read audio" in reasons[wavs[1].stem].reason
    assert reasons[wavs[1].stem].path == str(out / wavs[1].name)


def test_scp_lists_match_by_id(wavs, tmp_path) -> None:
    (tmp_path / "ref.scp").write_text(
        "# comment\n" + "".join(f"utt{i} {p}\n" for i, p in enumerate(wavs[:2])) + "utt9 cmd |\n"
    )
    (tmp_path / "out.scp").write_text(f"utt1 {wavs[1]}\nutt0 {wavs[0]}\nutt5 missing.wav\n")
    pairing = pairs_from_scp(tmp_path / "ref.scp", tmp_path / "out.scp")
    assert [i.id for i in pairing.items] == ["utt0", "utt1"]
    assert {p.id: p.reason for p in pairing.problems} == {
        "utt9": "pipe entries (command |) are not supported",
        "utt5": "no reference with this id",
    }


def test_manifest_with_unpaired_items(wavs, tmp_path) -> None:
    _copy(wavs, tmp_path)
    lines = [
        {"id": "t0", "output": wavs[0].name, "reference": wavs[1].name, "text": "x", "kind": "transfer"},
        {"id": "s0", "output": wavs[2].name, "reference": None, "text": "x", "kind": "sample"},
        {"id": "s1", "output": "gone.wav", "reference": None, "text": "x", "kind": "sample"},
    ]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{broken\n")
    result = evaluate_pairs(pairs_from_manifest(manifest), num_workers=0)
    assert [s.item.id for s in result.paired()] == ["t0"] and [s.item.id for s in result.unpaired()] == ["s0"]
    unpaired = result.unpaired()[0].values
    assert "ffe" not in unpaired and unpaired["out_f0_mean_hz"] > 50
    assert {p.id for p in result.problems} == {"s1", "line 4"}
    summary = result.to_dict()
    assert summary["n_paired"] == 1 and summary["n_unpaired"] == 1
    assert set(summary["by_kind"]) == {"sample", "transfer"}
    json.dumps(summary, allow_nan=False)  # nan written as null


def test_no_usable_pair_is_an_error(tmp_path) -> None:
    (tmp_path / "a.wav").write_bytes(b"junk")
    with pytest.raises(ValueError, match="no usable pairs.*a.wav"):
        evaluate_pairs([(tmp_path / "a.wav", tmp_path / "a.wav")], num_workers=0)


# ---- the command line -----------------------------------------------------------------------------


def test_cli_report_and_exit_codes(wavs, tmp_path, capsys) -> None:
    ref, out = _copy(wavs[:2], tmp_path / "ref"), _copy(wavs[:1], tmp_path / "out")
    report = tmp_path / "report"
    argv = ["evaluate", "--ref-dir", str(ref), "--out-dir", str(out), "--num-workers", "0"]
    assert main([*argv, "--report", str(report), "--plots", "1"]) == 0
    printed = capsys.readouterr().out
    assert "| ffe |" in printed and "1 pairs, 0 unpaired, 1 skipped" in printed
    assert {p.name for p in report.iterdir()} == {"metrics.csv", "summary.json", "figures"}
    assert {p.name for p in (report / "figures").iterdir()} == {f"f0_{wavs[0].stem}.png", "histograms.png"}
    assert json.loads((report / "summary.json").read_text())["n_problems"] == 1
    assert main([*argv, "--strict"]) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "nothing to evaluate"),
        (["--ref-dir", "a"], "must be given together"),
        (["--ref-dir", "a", "--out-dir", "b", "--manifest", "m"], "one source of pairs"),
        (["--manifest", "nope.jsonl"], "nope.jsonl: manifest not found"),
        # without --checkpoint, diagnostics measure the shipped model (-q: no note on which model)
        (["--diagnostics", "-q", "--data", "nowhere"], "split 'valid' not found"),
    ],
)
def test_cli_user_errors_exit_2(argv, message, capsys) -> None:
    assert main(["evaluate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_cli_zero_usable_pairs_exit_2(tmp_path, capsys) -> None:
    _copy([], tmp_path / "ref")
    (tmp_path / "ref" / "a.wav").write_bytes(b"junk")
    _copy([], tmp_path / "out")
    (tmp_path / "out" / "a.wav").write_bytes(b"junk")
    code = main(["evaluate", "--ref-dir", str(tmp_path / "ref"), "--out-dir", str(tmp_path / "out")])
    assert code == 2 and "no usable pairs" in capsys.readouterr().err


# ---- model diagnostics on a tiny trained checkpoint ------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    return tiny_checkpoint


@pytest.mark.slow
def test_diagnostics_kl_sums_and_iwae_1_is_the_elbo(checkpoint, tiny_prepared) -> None:
    from prosody_vae.data.dataset import ProsodyDataset, collate
    from prosody_vae.inference.synthesizer import Synthesizer
    from prosody_vae.prosody.likelihood import laplace_nll

    seed, n = 7, 6
    diag = model_diagnostics(checkpoint, split="train", max_items=n, batch_size=n, bound_ks=(1, 4), seed=seed)
    assert diag.n_items == n and diag.capacity == 5.0 and diag.beta > 0
    assert sum(diag.kl_per_dim) == pytest.approx(diag.kl_total.mean, rel=1e-6)
    assert sorted(diag.dims_by_activity) == list(range(4)) and 0 <= diag.active_units <= 4

    # The same quantities computed here from the model directly, with the same random draws:
    # z from a generator seeded with `seed`, prenet dropout from the global generator seeded likewise.
    synth = Synthesizer.from_checkpoint(checkpoint)
    model = synth.model
    utterances = read_manifest(tiny_prepared / "splits" / "train.jsonl")[:n]
    dataset = ProsodyDataset(utterances, tiny_prepared / "features", synth.tokenizer, speakers=synth.speakers)
    batch = collate([dataset[i] for i in range(n)])
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        post = model.encode_prosody(
            batch.mels,
            batch.mel_lengths,
            tokens=batch.tokens,
            token_lengths=batch.token_lengths,
            sample=False,
        )
        torch.manual_seed(seed)
        eps = torch.randn((1, n, 4), generator=torch.Generator().manual_seed(seed))[0]
        z = post.mean + post.std * eps
        mel_post = model.backbone(
            batch.tokens, batch.token_lengths, batch.mels, batch.mel_lengths, conditioning=z
        ).mel_post
        log_px = -laplace_nll(mel_post, batch.mels, batch.mel_lengths)
        normal = torch.distributions.Normal
        log_pz = normal(torch.zeros(4), torch.ones(4)).log_prob(z).sum(-1)
        log_qz = normal(post.mean, post.std).log_prob(z).sum(-1)
        elbo = log_px + log_pz - log_qz
    assert diag.kl_total.mean == pytest.approx(float(post.kl.mean()), rel=1e-5)
    assert diag.bounds[1].bound.mean == pytest.approx(float(elbo.mean()), rel=1e-6)
    assert diag.bounds[1].elbo.mean == diag.bounds[1].bound.mean
    # per element the log-likelihood is of the order of a unit Laplace's entropy, 1 + log 2 nats
    assert -10 < diag.bounds[4].nats_per_value < 0
    json.dumps(diag.to_dict(), allow_nan=False)


@pytest.mark.slow
def test_cli_diagnostics_write_json(checkpoint, tmp_path, capsys) -> None:
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--split", "train", "--max-items", "4"]
    assert main([*argv, "--bound", "iwae", "--k", "1,2", "--report", str(tmp_path), "--threads", "1"]) == 0
    saved = json.loads((tmp_path / "diagnostics.json").read_text())
    assert saved["n_items"] == 4 and set(saved["bounds"]) == {"iwae_1", "iwae_2"}
    assert "IWAE-2" in capsys.readouterr().out
    assert main([*argv, "--max-items", "1"]) == 2  # active units need two utterances
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects it before the command runs
        main([*argv, "--k", "0"])
    assert exit_info.value.code == 2
