"""The length model (tts/utterance_length.py), the time resampling (inference/timing.py), and both in
training, in synthesis and in the fitting recipe."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL, train_tiny

from prosody_vae.inference.synthesizer import Synthesis, Synthesizer
from prosody_vae.inference.timing import MAX_STRETCH, stretch, stretched_length
from prosody_vae.tts.utterance_length import UtteranceLength

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))


def _utterances(n: int, n_symbols: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.randint(5, 30, (n,), generator=generator)
    tokens = torch.randint(1, n_symbols, (n, int(lengths.max())), generator=generator)
    tokens[torch.arange(tokens.shape[1])[None, :] >= lengths[:, None]] = 0
    return tokens, lengths


def test_learns_token_durations_and_the_rate_the_conditioning_sets():
    """Lengths made by a known rule (a duration per token type, scaled by exp(a . c)) are learnt to
    within 2 % on utterances it was not fitted on."""
    g = torch.Generator().manual_seed(0)
    n_symbols, dim = 12, 3
    durations = torch.rand(n_symbols, generator=g) * 6 + 1
    durations[0] = 0.0  # padding
    a = torch.tensor([0.3, -0.2, 0.1])

    def frames(tokens, lengths, c):
        return durations[tokens].sum(1) * torch.exp(c @ a)

    model = UtteranceLength(n_symbols=n_symbols, conditioning_dim=dim)
    tokens, lengths = _utterances(400, n_symbols, g)
    c = torch.randn(400, dim, generator=g)
    target = frames(tokens, lengths, c)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(1500):
        optimizer.zero_grad()
        model.loss(tokens, lengths, c, target).mean().backward()
        optimizer.step()
    tokens, lengths = _utterances(100, n_symbols, g)
    c = torch.randn(100, dim, generator=g)
    error = (model(tokens, lengths, c) - torch.log(frames(tokens, lengths, c))).abs()
    assert float(error.detach().max()) < 0.02
    assert torch.allclose(model.rate.weight[0], a, atol=0.02)


def test_padding_does_not_change_the_length():
    model = UtteranceLength(n_symbols=8, conditioning_dim=2)
    with torch.no_grad():
        model.token_frames.copy_(torch.randn(8))  # padding id 0 has a weight too: it must not count
    tokens = torch.tensor([[3, 5, 2]])
    padded = torch.tensor([[3, 5, 2, 0, 0, 0]])
    c = torch.randn(1, 2)
    assert torch.allclose(model(tokens, torch.tensor([3]), c), model(padded, torch.tensor([3]), c))
    # a token past the length is padding even when its id is not 0
    assert torch.allclose(
        model(torch.tensor([[3, 5, 2, 7]]), torch.tensor([3]), c), model(tokens, torch.tensor([3]), c)
    )


def test_loss_reaches_only_the_length_model():
    """The conditioning (the posterior mean and the speaker vector) gets no gradient from it."""
    model = UtteranceLength(n_symbols=8, conditioning_dim=2)
    c = torch.randn(2, 2, requires_grad=True)
    model.loss(
        torch.tensor([[1, 2], [3, 0]]), torch.tensor([2, 1]), c * 2, torch.tensor([10, 4])
    ).sum().backward()
    assert c.grad is None
    assert model.rate.weight.grad is not None and float(model.rate.weight.grad.abs().sum()) > 0


def test_stretch_resamples_mel_f0_and_alignment():
    mel = torch.linspace(0, 1, 30)[:, None].repeat(1, 4)  # a ramp in time, (30, 4)
    f0 = torch.cat([torch.zeros(10), torch.full((10,), 120.0), torch.zeros(10)])
    alignment = torch.eye(10)  # 10 decoder steps of r = 3
    synthesis = Synthesis(mel=mel, alignment=alignment, z=torch.zeros(2), stopped=True, f0=f0)
    longer = stretch(synthesis, 36, r=3)
    assert longer.mel.shape == (36, 4) and longer.f0.shape == (36,) and longer.alignment.shape == (12, 10)
    assert torch.allclose(longer.mel[0], mel[0]) and torch.allclose(longer.mel[-1], mel[-1])
    assert bool((longer.mel[1:, 0] > longer.mel[:-1, 0]).all())  # the ramp stays a ramp
    assert set(longer.f0.tolist()) == {0.0, 120.0}  # no F0 invented between voiced and unvoiced
    assert int((longer.f0 > 0).sum()) == 12  # the voiced third stays a third
    assert bool((longer.alignment.argmax(1)[1:] >= longer.alignment.argmax(1)[:-1]).all())
    shorter = stretch(synthesis, 24, r=3)
    assert shorter.mel.shape[0] == 24 and int((shorter.f0 > 0).sum()) == 8
    assert stretch(synthesis, 30, r=3) is synthesis


def test_stretched_length_is_bounded():
    assert stretched_length(100, 110.4) == 110
    assert stretched_length(100, 1000.0) == round(100 * MAX_STRETCH)
    assert stretched_length(100, 1.0) == round(100 / MAX_STRETCH)
    assert stretched_length(100, math.nan) == 100
    with pytest.raises(ValueError):
        stretched_length(0, 10.0)


@pytest.fixture(scope="module")
def length_checkpoint(tiny_prepared, tmp_path_factory) -> Path:
    """A tiny model that predicts F0, trained with the length model from the start."""
    return train_tiny(
        tmp_path_factory.mktemp("length_model"),
        tiny_prepared,
        steps=4,
        prosody={"utterance_length": True},
        backbone={**TINY_MODEL["backbone"], "pitch": True},
    )


def test_training_logs_and_trains_the_length_model(length_checkpoint):
    import json

    from prosody_vae.checkpoint import load_checkpoint

    records = [
        json.loads(line) for line in (length_checkpoint.parents[1] / "log.jsonl").read_text().splitlines()
    ]
    errors = [r["utterance_length"] for r in records if "utterance_length" in r]
    assert len(errors) == 4 and all(math.isfinite(e) and e >= 0 for e in errors)
    assert any("valid/utterance_length" in r for r in records)
    weights = load_checkpoint(length_checkpoint)["training_module"]
    fresh = UtteranceLength(
        n_symbols=weights["model.utterance_length.token_frames"].shape[0], conditioning_dim=1
    )
    assert not torch.allclose(
        weights["model.utterance_length.token_frames"], fresh.token_frames
    )  # it trained


def _decode(synth: Synthesizer, text: str, z: torch.Tensor) -> Synthesis:
    torch.manual_seed(0)  # the prenet's dropout draws: the same decoder output each call
    return synth.synthesize([text], z)[0]


def test_synthesis_takes_the_predicted_length(length_checkpoint):
    synth = Synthesizer.from_checkpoint(length_checkpoint)
    text, z = "The cat sat on the mat.", torch.zeros(1, synth.latent_dim)
    synth.length_model = False
    own = _decode(synth, text, z)
    if not own.stopped:
        pytest.skip("the 4-step model did not stop: no length to correct")
    decoded = own.mel.shape[0]
    synth.length_model = True
    for factor in (1.1, 0.9, 3.0):
        tokens, lengths = synth.tokens([text])
        with torch.no_grad():  # make the model predict factor x the decoder's own length
            synth.model.utterance_length.rate.bias.zero_()
            base = float(synth.model.predicted_frames(tokens, lengths, z))
            synth.model.utterance_length.rate.bias.fill_(math.log(factor * decoded / base))
        out = _decode(synth, text, z)
        assert out.mel.shape[0] == stretched_length(decoded, factor * decoded)
        assert out.f0.shape[0] == out.mel.shape[0]
    assert out.mel.shape[0] == round(decoded * MAX_STRETCH)  # factor 3 is bounded


def test_fit_recipe_adds_a_length_model(tiny_checkpoint, tiny_prepared, tmp_path, capsys):
    import fit_utterance_length

    from prosody_vae.checkpoint import load_checkpoint

    out = tmp_path / "with_length.pt"
    assert (
        fit_utterance_length.main(["--checkpoint", str(tiny_checkpoint), "--out", str(out), "--steps", "300"])
        == 0
    )
    printed = capsys.readouterr().out
    fitted, tokens_only = (float(x) for x in _errors(printed))
    assert fitted < tokens_only  # the conditioning tells the rate: better than the tokens alone
    synth = Synthesizer.from_checkpoint(out)  # loads with weights_only, config says utterance_length
    assert synth.model.utterance_length is not None and synth.config.prosody.utterance_length
    source = Synthesizer.from_checkpoint(tiny_checkpoint)
    theirs = source.model.state_dict()
    for key, value in synth.model.state_dict().items():  # nothing else changed
        if not key.startswith("utterance_length."):
            assert torch.equal(value, theirs[key]), key
    assert "utterance_length" in load_checkpoint(out)["provenance"]


def _errors(printed: str) -> tuple[str, str]:
    """The training error and the tokens-alone training error from the recipe's report line."""
    line = next(line for line in printed.splitlines() if line.startswith("log-length error"))
    fitted = line.split("training ")[1].split(",")[0]
    tokens_only = line.split("(tokens alone: ")[1].split(",")[0]
    return fitted, tokens_only


def test_timing_eval_reports_the_rate_read_from_z(length_checkpoint, tiny_prepared, tmp_path, capsys):
    """recipes/timing_eval.py: every column measured; the spread of the rate the length model reads from
    z across sentences is 0 for a length model blind to z, and not for one that reads it."""
    import dataclasses

    import timing_eval

    from prosody_vae.checkpoint import load_checkpoint, save_checkpoint
    from prosody_vae.data.manifest import read_manifest, write_manifest

    utterances = read_manifest(tiny_prepared / "splits" / "train.jsonl")[:3]
    held_out = [dataclasses.replace(u, labels={**u.labels, "held_out_text": 1.0}) for u in utterances]
    (tmp_path / "corpus" / "splits").mkdir(parents=True)
    write_manifest(tmp_path / "corpus" / "splits" / "test.jsonl", held_out)
    state = load_checkpoint(length_checkpoint)
    weight = state["training_module"]["model.utterance_length.rate.weight"]
    weight.zero_()
    blind = save_checkpoint(tmp_path / "blind.pt", state)
    weight.fill_(1.0)  # every latent dimension moves the length
    reading = save_checkpoint(tmp_path / "reading.pt", state)

    def rate_spread(checkpoint: Path) -> float:
        argv = ["--checkpoint", str(checkpoint), "--corpus", str(tmp_path / "corpus"), "--voice", "en-us"]
        assert timing_eval.main([*argv, "--n", "3", "--rates", "150"]) == 0
        row = capsys.readouterr().out.strip().splitlines()[-1].strip("| ").split(" | ")
        assert row[0] == "150" and len(row) == 8
        values = [float(x) for x in row[1:]]
        assert values[0] > 0 and all(math.isfinite(v) and v >= 0 for v in values)
        return values[-1]

    assert rate_spread(blind) == 0.0
    assert rate_spread(reading) > 0.0
