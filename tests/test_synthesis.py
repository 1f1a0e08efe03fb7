"""Synthesizer (library): interpolation paths, traversal, latent activity, reference loading, checkpoints.

A randomly initialised tiny model is enough here: these check how latents are built and routed,
not what the speech sounds like (tests/test_cli.py runs the commands on a trained model).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from prosody_vae.audio import AudioError
from prosody_vae.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from prosody_vae.config import ExperimentConfig
from prosody_vae.data.feature_cache import load_features
from prosody_vae.data.manifest import read_manifest
from prosody_vae.inference.synthesizer import (
    ReferenceNotice,
    Synthesizer,
    interpolation_path,
    reduced_precision,
)
from prosody_vae.text import build_tokenizer
from prosody_vae.tts.model import build_model


def _config(tiny_prepared, **prosody) -> ExperimentConfig:
    from conftest import TINY_MODEL

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["data"] = {"root": str(tiny_prepared), "batch_size": 4}
    raw["prosody"].update(prosody)
    return ExperimentConfig.from_dict(raw)


def _checkpoint(path, config, tokenizer, model, speakers):
    return save_checkpoint(
        path,
        {
            "config": config.to_dict(),
            "tokenizer": tokenizer.config(),
            "model": model.state_dict(),
            "speakers": speakers,
        },
    )


@pytest.fixture(scope="module")
def synth(tiny_prepared):
    torch.manual_seed(0)
    config = _config(tiny_prepared)
    tokenizer = build_tokenizer("phonemes")
    model = build_model(config, n_symbols=tokenizer.vocab_size)
    return Synthesizer(model=model, tokenizer=tokenizer, config=config, speakers=["en-us"])


@pytest.fixture(scope="module")
def utterances(tiny_prepared):
    return read_manifest(tiny_prepared / "splits" / "train.jsonl")


def test_interpolation_path_ends_and_midpoints():
    a, b = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])
    linear = interpolation_path(a, b, 3, "linear")
    spherical = interpolation_path(a, b, 3, "slerp")
    for path in (linear, spherical):
        assert path.shape == (3, 3)
        assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(linear[1], (a + b) / 2)
    # slerp between equal norms stays on the sphere; the linear midpoint cuts inside it
    assert math.isclose(float(spherical[1].norm()), 3.0, rel_tol=1e-5)
    assert float(linear[1].norm()) < 2.2
    with pytest.raises(ValueError, match="steps"):
        interpolation_path(a, b, 1)


def test_interpolate_runs_from_one_posterior_mean_to_the_other(synth, utterances):
    first, second = utterances[0], utterances[1]
    results = synth.interpolate(
        "Hello.", first.audio, second.audio, steps=3, start_text=first.text, end_text=second.text
    )
    a = synth.embed(first.audio, reference_text=first.text).mean[0]
    b = synth.embed(second.audio, reference_text=second.text).mean[0]
    assert len(results) == 3
    assert torch.allclose(results[0].z, a) and torch.allclose(results[-1].z, b)
    assert torch.allclose(results[1].z, (a + b) / 2, atol=1e-6)


def test_traverse_moves_only_the_chosen_dimension(synth, utterances):
    ref = utterances[0]
    base = synth.embed(ref.audio, reference_text=ref.text).mean[0]
    results = synth.traverse("Hello.", 2, [-1.0, 0.5], reference=ref.audio, reference_text=ref.text)
    for value, result in zip([-1.0, 0.5], results, strict=True):
        delta = result.z - base
        assert math.isclose(float(delta[2]), value, abs_tol=1e-6)
        assert float(delta.abs().sum() - delta[2].abs()) < 1e-6
    no_ref = synth.traverse("Hello.", 0, [1.5])[0].z
    assert torch.equal(no_ref, torch.tensor([1.5, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="dimension"):
        synth.traverse("Hello.", synth.latent_dim, [1.0])


def test_latent_activity_is_the_mean_kl_and_ignores_padding(synth, utterances, tiny_prepared):
    mels = [load_features(tiny_prepared / "features", u.id)["mel"] for u in utterances[:5]]
    texts = [u.text for u in utterances[:5]]
    assert len({m.shape[0] for m in mels}) > 1  # different lengths: the batch is padded
    activity = synth.latent_activity(mels, texts=texts, batch_size=2)
    one_by_one = torch.stack(
        [synth.embed(m, reference_text=t).kl_per_dim[0] for m, t in zip(mels, texts, strict=True)]
    )
    assert activity.shape == (synth.latent_dim,)
    assert torch.allclose(activity, one_by_one.mean(0), atol=1e-5)


def test_stereo_reference_at_another_rate_is_converted_with_a_notice(synth, utterances, tmp_path):
    wav, rate = sf.read(utterances[0].audio, dtype="float32")
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([wav, wav], axis=1)[::2], rate // 2)  # 11025 Hz, two channels
    with pytest.warns(ReferenceNotice, match="mixed 2 channels to mono, resampled from 11025 Hz"):
        mel = synth.reference_mel(stereo)
    assert mel.shape[1] == 80
    assert abs(mel.shape[0] - synth.reference_mel(utterances[0].audio).shape[0]) <= 3


def test_too_short_and_missing_references_name_the_file(synth, tmp_path):
    short = tmp_path / "short.wav"
    t = np.arange(int(0.1 * 22050)) / 22050
    sf.write(short, (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 22050)
    with pytest.raises(AudioError, match=r"short\.wav: reference is 0\.\d+ s .* too short"):
        synth.reference_mel(short)
    with pytest.raises(AudioError, match=r"nope\.wav: reference file not found"):
        synth.reference_mel(tmp_path / "nope.wav")


def test_speaker_on_a_single_speaker_model(synth):
    assert synth.speaker_ids(None, 2) is None and synth.speaker_ids("en-us", 2) is None
    with pytest.raises(ValueError, match="unknown speaker 'bob'"):
        synth.speaker_ids("bob", 1)


def test_checkpoint_round_trip_and_weights_that_do_not_fit(synth, tiny_prepared, tmp_path):
    path = _checkpoint(tmp_path / "ok.pt", synth.config, synth.tokenizer, synth.model, synth.speakers)
    loaded = Synthesizer.from_checkpoint(path)
    z = torch.zeros(1, synth.latent_dim)
    torch.manual_seed(1)
    expected = synth.synthesize(["Hello."], z, max_steps=5)[0].mel
    torch.manual_seed(1)  # the prenet's dropout stays on at inference
    assert torch.allclose(loaded.synthesize(["Hello."], z, max_steps=5)[0].mel, expected)

    other = build_model(_config(tiny_prepared, latent_dim=6), n_symbols=synth.tokenizer.vocab_size)
    state = load_checkpoint(path)
    state["model"] = other.state_dict()
    bad = save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(CheckpointError) as caught:
        Synthesizer.from_checkpoint(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad}: weights do not fit") and "\n" not in message


def test_reduced_precision_synthesis_is_close_to_fp32_and_checked(synth):
    """bf16 and int8 decoder cells give the same lengths and nearly the same mel as fp32 (same seed:
    the prenet's dropout stays on at inference); an unknown name or int8 off the CPU is refused."""
    z = torch.zeros(1, synth.latent_dim)

    def run(precision: str) -> torch.Tensor:
        synth.precision = precision
        torch.manual_seed(3)
        return synth.synthesize(["Is the lantern red?"], z, max_steps=30)[0].mel

    try:
        exact = run("fp32")
        for precision in ("bf16", "int8"):
            mel = run(precision)
            assert mel.shape == exact.shape, precision
            difference = (mel - exact).abs()
            assert 0 < float(difference.max()) and float(difference.mean()) < 0.05, (
                precision,
                difference.mean(),
            )
        synth.precision = "fp16"
        with pytest.raises(ValueError, match="precision must be one of"):
            synth.synthesize(["Hello."], z, max_steps=5)
    finally:
        synth.precision = "fp32"
    with pytest.raises(ValueError, match="CPU only"):
        reduced_precision("int8", torch.device("cuda"))
