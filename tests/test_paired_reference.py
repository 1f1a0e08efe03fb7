"""Paired references (prosody.paired_reference): the corpus's setting groups, partners in the dataset,
the posterior reading the partner in training only, and a training run with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import MICRO_BACKBONE, train_tiny

from prosody_vae.config import ExperimentConfig
from prosody_vae.data.dataset import Batch, PartnerBatch, ProsodyDataset, collate
from prosody_vae.data.espeak.plan import corpus_settings, plan_corpus
from prosody_vae.data.manifest import Utterance, read_manifest, write_manifest
from prosody_vae.data.partners import partner_indices
from prosody_vae.prosody.capacity import CapacityObjective
from prosody_vae.training.objective import TrainingModule
from prosody_vae.tts.model import build_model
from prosody_vae.tts.paired_reference import Reference, choose_references

VOICES = ["en-us", "en-us+m3", "en-us+f4"]
SIZES = {
    "backbone": MICRO_BACKBONE,
    "prosody": {"latent_dim": 3, "ref_channels": [4, 4], "ref_rnn_size": 8, "text_summary_dim": 8},
}


def test_a_setting_group_shares_voice_and_factors_and_not_its_sentence():
    plans = plan_corpus(
        40, seed=2, voices=VOICES, held_out_fraction=0.2, intonation="contour", texts_per_setting=2
    )
    for first, second in zip(plans[::2], plans[1::2], strict=True):
        assert first.setting_group == second.setting_group == int(first.id[-5:]) // 2
        assert (first.voice, first.pitch, first.pitch_range, first.rate, first.contour) == (
            second.voice,
            second.pitch,
            second.pitch_range,
            second.rate,
            second.contour,
        )
        assert first.text != second.text
        assert first.labels()["setting_group"] == float(first.setting_group)
    # the groups draw different settings (not one draw for the whole corpus)
    assert len({(p.voice, p.pitch, p.rate) for p in plans}) > 15


def test_one_text_per_setting_is_the_original_plan():
    """texts_per_setting = 1 changes no utterance and no corpus description (old folders still match)."""
    kwargs = dict(seed=0, voices=VOICES, held_out_fraction=0.05, intonation="contour")
    assert plan_corpus(30, **kwargs, texts_per_setting=1) == plan_corpus(30, **kwargs)
    assert all("setting_group" not in p.labels() for p in plan_corpus(30, **kwargs))
    settings = dict(seed=0, multi_speaker=False, held_out_fraction=0.05, espeak_version="x")
    assert "texts_per_setting" not in corpus_settings(**settings)
    assert corpus_settings(**settings, texts_per_setting=3)["texts_per_setting"] == 3
    with pytest.raises(ValueError, match="texts_per_setting"):
        corpus_settings(**settings, texts_per_setting=0)


def _utterance(uid: str, speaker: str, group: float | None, rate: float = 200.0) -> Utterance:
    labels = {"rate": rate} if group is None else {"rate": rate, "setting_group": group}
    return Utterance(id=uid, audio=f"{uid}.wav", text="a b", speaker=speaker, labels=labels)


def test_partners_are_the_other_members_of_a_group():
    utterances = [
        _utterance("a0", "v1", 0),
        _utterance("x", "v1", None),  # no group
        _utterance("a1", "v1", 0),
        _utterance("b0", "v1", 1),  # its partner is in another split: none here
        _utterance("c0", "v2", 0),  # group 0 of another voice: not a0's partner
        _utterance("d0", "v1", 0, rate=150.0),  # group 0 of another merged corpus (other factors)
        _utterance("e0", "v2", 5),
        _utterance("e1", "v2", 5),
        _utterance("e2", "v2", 5),
    ]
    assert partner_indices(utterances) == [2, -1, 0, -1, -1, -1, 7, 8, 6]


def _features(root: Path, uid: str, frames: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    torch.save(
        {
            "mel": torch.randn(frames, 80, generator=g),
            "energy": torch.ones(frames),
            "f0": torch.full((frames,), 100.0 + seed),
        },
        root / f"{uid}.pt",
    )


class _Characters:
    def encode(self, text: str) -> list[int]:
        return [ord(c) % 20 + 1 for c in text]


def test_the_dataset_gives_partners_and_collate_pads_them(tmp_path: Path):
    utterances = [_utterance("a0", "v1", 0), _utterance("a1", "v1", 0), _utterance("x", "v1", None)]
    utterances = [
        Utterance(**{**u.__dict__, "text": t}) for u, t in zip(utterances, ["hi", "hello", "yo"], strict=True)
    ]
    for seed, (u, frames) in enumerate(zip(utterances, [7, 11, 5], strict=True)):
        _features(tmp_path, u.id, frames, seed)
    dataset = ProsodyDataset(utterances, tmp_path, _Characters(), partners=True)
    assert dataset.n_partnered == 2
    assert ProsodyDataset(utterances, tmp_path, _Characters()).n_partnered == 0
    batch = collate([dataset[0], dataset[1], dataset[2]])
    partner = batch.partner
    assert partner is not None
    assert partner.available.tolist() == [True, True, False]
    assert partner.mel_lengths.tolist() == [11, 7, 5]  # a0 reads a1, a1 reads a0, x itself
    assert partner.token_lengths.tolist() == [5, 2, 2]
    torch.testing.assert_close(partner.mels[0, :11], dataset[1]["mel"])
    torch.testing.assert_close(partner.mels[2, :5], dataset[2]["mel"])
    assert float(partner.f0[1, 0]) == 100.0
    assert collate([dataset[2]]).partner is None  # no item with a partner: no partner batch


def _batch(g: torch.Generator) -> Batch:
    own_lengths, partner_lengths = torch.tensor([9, 12, 8]), torch.tensor([14, 6, 8])
    mels = torch.randn(3, 12, 80, generator=g)
    partner_mels = torch.randn(3, 14, 80, generator=g)
    return Batch(
        ids=["a", "b", "c"],
        tokens=torch.randint(1, 10, (3, 6), generator=g),
        token_lengths=torch.tensor([6, 5, 4]),
        mels=mels,
        mel_lengths=own_lengths,
        speakers=torch.zeros(3, dtype=torch.long),
        labels=[{}, {}, {}],
        partner=PartnerBatch(
            tokens=torch.randint(1, 10, (3, 7), generator=g),
            token_lengths=torch.tensor([7, 3, 4]),
            mels=partner_mels,
            mel_lengths=partner_lengths,
            f0=None,
            available=torch.tensor([True, True, False]),
        ),
    )


def _means(model, batch: Batch) -> torch.Tensor:
    torch.manual_seed(1)
    return model(
        batch.tokens, batch.token_lengths, batch.mels, batch.mel_lengths, partner=batch.partner
    ).prosody.mean


def _changed(batch: Batch, *, own: int | None = None, partner: int | None = None) -> Batch:
    mels, partner_mels = batch.mels.clone(), batch.partner.mels.clone()
    if own is not None:
        mels[own] += 1.0
    if partner is not None:
        partner_mels[partner] += 1.0
    return Batch(
        **{
            **batch.__dict__,
            "mels": mels,
            "partner": PartnerBatch(**{**batch.partner.__dict__, "mels": partner_mels}),
        }
    )


def test_in_training_the_posterior_reads_the_partner_where_there_is_one():
    """With paired_reference = 1, an item with a partner gets z from the partner's mel (its own mel no
    longer matters), an item without one from its own; in eval mode every item reads its own."""
    torch.manual_seed(0)
    config = ExperimentConfig.from_dict({**SIZES, "prosody": {**SIZES["prosody"], "paired_reference": 1.0}})
    model = build_model(config, n_symbols=10)
    assert model.paired_reference == 1.0
    batch = _batch(torch.Generator().manual_seed(0))
    model.train()
    base = _means(model, batch)
    # item 0 has a partner: its own mel does not reach z, the partner's does
    torch.testing.assert_close(_means(model, _changed(batch, own=0))[0], base[0])
    assert not torch.allclose(_means(model, _changed(batch, partner=0))[0], base[0])
    # item 2 has none: its own mel reaches z, its (stand-in) partner row does not
    assert not torch.allclose(_means(model, _changed(batch, own=2))[2], base[2])
    torch.testing.assert_close(_means(model, _changed(batch, partner=2))[2], base[2])
    model.eval()
    base = _means(model, batch)
    torch.testing.assert_close(_means(model, _changed(batch, partner=0)), base)
    assert not torch.allclose(_means(model, _changed(batch, own=0))[0], base[0])
    # off: in training too, every item reads its own
    model.train()
    model.paired_reference = 0.0
    base = _means(model, batch)
    torch.testing.assert_close(_means(model, _changed(batch, partner=0)), base)


def test_choose_references_takes_whole_rows_and_pads_with_zeros():
    g = torch.Generator().manual_seed(3)
    batch = _batch(g)
    own = Reference(batch.mels, batch.mel_lengths, batch.tokens, batch.token_lengths, None)
    chosen = choose_references(own, batch.partner, torch.tensor([True, False, False]))
    assert chosen.mels.shape == (3, 14, 80) and chosen.tokens.shape == (3, 7)
    torch.testing.assert_close(chosen.mels[0], batch.partner.mels[0])
    torch.testing.assert_close(chosen.mels[1, :12], batch.mels[1])
    assert float(chosen.mels[1, 12:].abs().sum()) == 0.0
    assert chosen.mel_lengths.tolist() == [14, 12, 8] and chosen.token_lengths.tolist() == [7, 5, 4]


def test_the_objective_passes_the_partner_and_still_targets_the_item():
    """The reconstruction is of the item's own mel whatever the posterior read."""
    torch.manual_seed(0)
    config = ExperimentConfig.from_dict({**SIZES, "prosody": {**SIZES["prosody"], "paired_reference": 1.0}})
    module = TrainingModule(model=build_model(config, n_symbols=10), objective=CapacityObjective(5.0))
    batch = _batch(torch.Generator().manual_seed(0))
    torch.manual_seed(2)
    parts, output = module(batch)
    assert output.tacotron.mel.shape[1] >= 12  # the item's frames, not the partner's 14
    torch.manual_seed(2)
    moved, _ = module(_changed(batch, partner=0))
    assert float(moved.kl) != float(parts.kl)  # the posterior read the partner


def test_config_checks_the_share():
    with pytest.raises(ValueError, match="paired_reference"):
        ExperimentConfig.from_dict({"prosody": {"paired_reference": 1.5}})
    with pytest.raises(ValueError, match="paired_reference"):
        ExperimentConfig.from_dict({"prosody": {"paired_reference": -0.1}})


def _paired_copy(tiny_prepared: Path, root: Path) -> Path:
    """tiny_prepared with its training items grouped in pairs (setting_group labels; the pair's drawn
    factors are the first member's, as in a corpus built with texts_per_setting 2)."""
    out = root / "paired"
    (out / "splits").mkdir(parents=True)
    (out / "features").symlink_to(tiny_prepared / "features")
    for split in (tiny_prepared / "splits").glob("*.jsonl"):
        utterances = read_manifest(split)
        if split.stem == "train":
            factors = ("pitch", "pitch_range", "rate")
            utterances = [
                Utterance(
                    **{
                        **u.__dict__,
                        "labels": {
                            **u.labels,
                            **{name: utterances[i - i % 2].labels[name] for name in factors},
                            "setting_group": float(i // 2),
                        },
                    }
                )
                for i, u in enumerate(utterances)
            ]
        write_manifest(out / "splits" / split.name, utterances)
    for name in ("audio_config.json", "prepare.json"):
        if (tiny_prepared / name).exists():
            (out / name).write_text((tiny_prepared / name).read_text())
    return out


def test_training_with_paired_references(tiny_prepared: Path, tmp_path: Path, capsys):
    from prosody_vae.cli import main

    paired = _paired_copy(tiny_prepared, tmp_path)
    (tmp_path / "run").mkdir()
    checkpoint = train_tiny(tmp_path / "run", paired, steps=3, prosody={"paired_reference": 0.5})
    state = torch.load(checkpoint, weights_only=True, map_location="cpu")
    assert state["config"]["prosody"]["paired_reference"] == 0.5
    log = [json.loads(line) for line in (tmp_path / "run" / "exp" / "log.jsonl").read_text().splitlines()]
    assert all(row["kl"] == row["kl"] for row in log if "kl" in row)  # finite, no NaN
    # a corpus without groups is refused before the first step, with the reason
    config = (tmp_path / "run" / "config.yaml").read_text().replace(str(paired), str(tiny_prepared))
    (tmp_path / "bad.yaml").write_text(config)
    capsys.readouterr()
    argv = [
        "train",
        "--config",
        str(tmp_path / "bad.yaml"),
        "--out",
        str(tmp_path / "bad"),
        "--max-steps",
        "1",
    ]
    assert main(argv) != 0
    assert "no training utterance has a partner" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "checkpoints").exists()
