"""Packed models: a training checkpoint shrunk to what synthesis needs, and the shipped model."""

from __future__ import annotations

import pytest
import torch

from prosody_vae.checkpoint import CheckpointError, load_checkpoint
from prosody_vae.inference.packed import builtin_model_path, pack_model
from prosody_vae.inference.synthesizer import Synthesizer


@pytest.fixture(scope="module")
def trained_checkpoint(tiny_checkpoint):
    return tiny_checkpoint


def test_pack_keeps_what_synthesis_needs(trained_checkpoint, tmp_path, tiny_prepared):
    from prosody_vae.data.manifest import read_manifest

    fp32 = pack_model(trained_checkpoint, tmp_path / "fp32.pt", dtype=torch.float32, provenance={"note": "x"})
    fp16 = pack_model(trained_checkpoint, tmp_path / "fp16.pt")
    state = load_checkpoint(fp16)
    assert set(state) >= {"model", "config", "tokenizer", "speakers", "beta", "provenance"}
    assert "optimizer" not in state and "rng" not in state
    assert state["provenance"]["step"] == 2
    assert load_checkpoint(fp32)["provenance"]["note"] == "x"
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())
    assert fp16.stat().st_size < 0.6 * fp32.stat().st_size < 0.6 * trained_checkpoint.stat().st_size
    assert state["beta"] > 0

    ref = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    z = {}
    for name, path in (("train", trained_checkpoint), ("fp32", fp32), ("fp16", fp16)):
        synth = Synthesizer.from_checkpoint(path)
        z[name] = synth.embed(ref.audio, reference_text=ref.text).mean
    assert torch.equal(z["train"], z["fp32"])
    assert torch.allclose(z["train"], z["fp16"], atol=1e-2) and not torch.equal(z["train"], z["fp16"])


def test_pack_rejects_a_file_without_a_config(tmp_path):
    from prosody_vae.checkpoint import save_checkpoint

    bad = save_checkpoint(tmp_path / "bad.pt", {"model": {}})
    with pytest.raises(CheckpointError, match="bad.pt.*config"):
        pack_model(bad, tmp_path / "out.pt")


def test_shipped_model_loads_with_its_provenance():
    state = load_checkpoint(builtin_model_path())
    assert state["provenance"]["step"] > 0 and "train" in state["provenance"]
    assert builtin_model_path().stat().st_size < 20 * 2**20
    synth = Synthesizer.from_checkpoint(builtin_model_path())
    assert synth.model.prosody.latent_dim == state["config"]["prosody"]["latent_dim"]


def test_shipped_model_reads_a_references_pace_without_its_transcript(tmp_path):
    """The same sentence at three espeak-ng rates, in a voice the model never heard: without the
    transcript, the length a transfer gives a new sentence follows the reference's rate as with it,
    and a reference stretched in time (its mel, 1.3x) gives a 1.3x longer output."""
    import math

    import torch.nn.functional as F

    from prosody_vae.data.espeak.synthesis import synthesize

    synth = Synthesizer.from_checkpoint(builtin_model_path())
    assert synth.reads_pace_without_transcript
    text = "Clara noticed that Felix moved their candle before the storm."
    tokens, lengths = synth.tokens(["Please bring the green bottle back before lunch."])

    def output_frames(mel, z, reference_text=None):
        """The output's length: the length model's for the new sentence, times the reference's scale."""
        scale = synth.reference_length_scale(mel.shape[0], reference_text, z, None, reference_mel=mel)
        frames = synth.model.predicted_frames(tokens, lengths, z, speakers=synth.speaker_ids(None, 1))
        return float(frames[0] * scale[0])

    transcribed, estimated = [], []
    for rate in (130, 175, 230):
        path = synthesize(
            text, pitch=50, pitch_range=50, rate=rate, voice="en-029+m7", out_path=tmp_path / f"{rate}.wav"
        )
        mel = synth.reference_mel(str(path))
        z = synth.embed(str(path)).z
        transcribed.append(output_frames(mel, z, text))
        estimated.append(output_frames(mel, z))
        if rate == 175:
            longer = F.interpolate(mel.T[None], size=round(1.3 * mel.shape[0]), mode="linear")[0].T
            assert output_frames(longer, z) / estimated[-1] == pytest.approx(1.3, rel=0.08)
    assert estimated[0] > 1.15 * estimated[1] > 1.15**2 * estimated[2]  # slower reference, longer output
    for t, e in zip(transcribed, estimated, strict=True):
        assert math.log(e) == pytest.approx(math.log(t), abs=0.15)  # near the transcribed pace
