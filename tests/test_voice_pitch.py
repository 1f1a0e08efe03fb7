"""F0 relative to the reference's voice (prosody.reference_pitch_relative): the voice means, which
one a reference gets, and a posterior that reads the level relative to the voice, not the Hz."""

from __future__ import annotations

import math

import pytest
import torch

from prosody_vae.config import ExperimentConfig
from prosody_vae.tts.model import UNKNOWN_SPEAKER, build_model
from prosody_vae.tts.voice_pitch import VoicePitch, mean_f0_hz, voice_f0_table


def test_voice_means_are_geometric_over_voiced_frames_only() -> None:
    a = torch.tensor([100.0, 0.0, 400.0])  # the unvoiced frame does not count
    b = torch.tensor([0.0, 200.0])
    assert mean_f0_hz([a, b]) == pytest.approx(math.exp((math.log(100) + math.log(400) + math.log(200)) / 3))
    table = voice_f0_table(["x", "y"], [("y", b), ("x", a), ("y", torch.tensor([50.0]))])
    assert table == pytest.approx([200.0, 100.0])  # x: sqrt(100 * 400); y: sqrt(200 * 50)
    with pytest.raises(ValueError, match="no voiced frame"):
        mean_f0_hz([torch.zeros(5)])
    with pytest.raises(ValueError, match="speaker\\(s\\) z"):
        voice_f0_table(["x", "z"], [("x", a), ("z", torch.zeros(3))])


def test_a_reference_gets_the_given_mean_else_its_voice_s_else_its_own() -> None:
    pitch = VoicePitch(2)
    pitch.set_table([120.0, 210.0])
    f0 = torch.tensor([[100.0, 0.0, 400.0, 999.0], [150.0, 150.0, 0.0, 0.0]])  # 999: padding
    lengths = torch.tensor([3, 4])
    speakers = torch.tensor([UNKNOWN_SPEAKER, 1])
    torch.testing.assert_close(pitch.voice_hz(f0, lengths, speakers), torch.tensor([200.0, 210.0]))
    given = torch.tensor([90.0, 0.0])  # first given, second not
    torch.testing.assert_close(pitch.voice_hz(f0, lengths, speakers, given), torch.tensor([90.0, 210.0]))
    relative = VoicePitch.relative(f0, torch.tensor([200.0, 300.0]))
    torch.testing.assert_close(relative[0, :3], torch.tensor([50.0, 0.0, 200.0]))  # unvoiced stays 0
    with pytest.raises(ValueError, match="finite positive"):
        pitch.set_table([120.0, -1.0])


def _tiny(relative: bool):
    from conftest import TINY_MODEL

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["prosody"].update(
        speaker_dim=4,
        text_summary=False,
        speaker_dropout=0.2,
        reference_pitch=True,
        reference_pitch_relative=relative,
    )
    torch.manual_seed(0)
    model = build_model(ExperimentConfig.from_dict(raw), n_symbols=20, n_speakers=2).eval()
    torch.nn.init.normal_(model.prosody.pitch_encoder.projection.weight, std=0.5)  # it starts at zero
    return model


def test_the_posterior_reads_the_level_relative_to_the_voice() -> None:
    model = _tiny(relative=True)
    model.voice_pitch.set_table([120.0, 210.0])
    mel, lengths = torch.randn(1, 40, 80), torch.tensor([40])
    f0 = torch.linspace(110.0, 170.0, 40)[None]
    unknown = torch.tensor([UNKNOWN_SPEAKER])

    def mean(f0: torch.Tensor, voice: float | None, speakers: torch.Tensor = unknown) -> torch.Tensor:
        given = None if voice is None else torch.tensor([voice])
        return model.posterior_means(mel, lengths, speakers=speakers, f0=f0, voice_f0=given)

    # the same contour an octave up in a voice an octave up reads the same ...
    torch.testing.assert_close(mean(f0, 140.0), mean(2 * f0, 280.0))
    # ... while the same Hz in a higher voice is lower for that voice, and reads differently
    assert not torch.allclose(mean(f0, 140.0), mean(f0, 280.0), atol=1e-4)
    # a training voice's mean comes from the table
    torch.testing.assert_close(mean(f0, None, torch.tensor([1])), mean(f0, 210.0, torch.tensor([1])))
    # no mean given and no voice known: the reference's own (geometric) mean
    own = mean_f0_hz([f0[0]])
    torch.testing.assert_close(mean(f0, None), mean(f0, own))
    # a model that reads F0 in Hz ignores the voice's mean
    absolute = _tiny(relative=False)
    assert absolute.voice_pitch is None
    torch.testing.assert_close(
        absolute.posterior_means(mel, lengths, speakers=unknown, f0=f0, voice_f0=torch.tensor([140.0])),
        absolute.posterior_means(mel, lengths, speakers=unknown, f0=f0, voice_f0=torch.tensor([280.0])),
    )


def test_relative_pitch_needs_a_pitch_reading_multi_speaker_posterior() -> None:
    with pytest.raises(ValueError, match="reference_pitch_relative"):
        ExperimentConfig.from_dict({"prosody": {"speaker_dim": 4, "reference_pitch_relative": True}})
    with pytest.raises(ValueError, match="reference_pitch_relative"):
        ExperimentConfig.from_dict({"prosody": {"reference_pitch": True, "reference_pitch_relative": True}})
