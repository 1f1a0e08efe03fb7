"""Vocoders: Griffin-Lim by default, a TorchScript vocoder checked against the model's audio parameters.

HiFi-GAN generator checkpoints: tests/test_vocoder_hifigan.py.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import Tensor, nn

from prosody_vae.audio import AudioConfig, log_mel
from prosody_vae.audio.vocoders import GriffinLimVocoder, TorchScriptVocoder, VocoderError, load_vocoder

# torch.jit.script is what a user runs to build a vocoder file; recent torch warns it is deprecated
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class HoldVocoder(nn.Module):
    """Each frame's mean log-mel, squashed and held for one hop: (B, T, n_mels) -> (B, T * hop)."""

    def __init__(self, sample_rate: int = 22050, hop_length: int = 256, n_mels: int = 80):
        super().__init__()
        self.sample_rate = sample_rate
        self.hop_length = hop_length
        self.n_mels = n_mels

    def forward(self, mels: Tensor) -> Tensor:
        return torch.tanh(mels.mean(-1)).repeat_interleave(self.hop_length, dim=1)


class Undeclared(nn.Module):
    def forward(self, mels: Tensor) -> Tensor:
        return mels.mean(-1)


def scripted(tmp_path, module: nn.Module, name: str = "voc.ts"):
    path = tmp_path / name
    torch.jit.script(module).save(str(path))
    return path


def test_default_is_griffin_lim_and_inverts_a_mel():
    config = AudioConfig()
    t = torch.arange(22050) / 22050
    tone = (0.5 * torch.sin(2 * torch.pi * 220 * t)).float()
    mel = log_mel(tone, config)  # (T, n_mels)
    vocoder = load_vocoder(None, config, n_iter=4)
    assert isinstance(vocoder, GriffinLimVocoder)
    wav = vocoder(mel)
    assert wav.dim() == 1 and abs(wav.shape[0] - tone.shape[0]) <= config.hop_length
    # the resynthesis has its energy at the tone's frequency, not spread over the spectrum
    spectrum = torch.fft.rfft(wav).abs()
    peak_hz = float(spectrum.argmax()) * config.sample_rate / wav.shape[0]
    assert abs(peak_hz - 220) < 10


def test_scripted_vocoder_declares_parameters_as_attributes(tmp_path):
    path = scripted(tmp_path, HoldVocoder())
    vocoder = load_vocoder(path, AudioConfig())
    assert isinstance(vocoder, TorchScriptVocoder)
    mels = torch.randn(2, 7, 80)
    wav = vocoder(mels)
    assert wav.shape == (2, 7 * 256)
    assert torch.allclose(wav[:, ::256], torch.tanh(mels.mean(-1)))
    assert vocoder(mels[0]).shape == (7 * 256,)


@pytest.mark.parametrize(
    ("declared", "field"), [({"n_mels": 64}, "n_mels"), ({"sample_rate": 16000}, "sample_rate")]
)
def test_mismatched_parameters_are_one_clear_error(tmp_path, declared, field):
    path = scripted(tmp_path, HoldVocoder(**declared))
    with pytest.raises(VocoderError) as caught:
        load_vocoder(path, AudioConfig())
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and field in message
    assert str(declared[field]) in message


def test_undeclared_vocoder_is_refused_unless_a_sidecar_declares(tmp_path):
    path = scripted(tmp_path, Undeclared())
    with pytest.raises(VocoderError, match="does not declare sample_rate, hop_length, n_mels"):
        load_vocoder(path, AudioConfig())
    sidecar = tmp_path / "voc.ts.json"
    sidecar.write_text(json.dumps({"sample_rate": 22050, "hop_length": 256, "n_mels": 80, "f_max": 8000.0}))
    assert isinstance(load_vocoder(path, AudioConfig()), TorchScriptVocoder)
    sidecar.write_text(json.dumps({"sample_rate": 22050, "hop_length": 256, "n_mels": 80, "f_max": 11025.0}))
    with pytest.raises(VocoderError, match="f_max 11025.0"):
        load_vocoder(path, AudioConfig())


def test_missing_or_foreign_file(tmp_path):
    with pytest.raises(VocoderError, match="not found"):
        load_vocoder(tmp_path / "nope.ts", AudioConfig())
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"not a zip archive")
    with pytest.raises(VocoderError, match="not a TorchScript vocoder nor a HiFi-GAN generator checkpoint"):
        load_vocoder(junk, AudioConfig())


def test_torchscript_is_recognised_by_content_not_name(tmp_path):
    """A TorchScript file named like a HiFi-GAN checkpoint, with a config.json beside it, is TorchScript."""
    path = scripted(tmp_path, HoldVocoder(), name="g_00000001")
    (tmp_path / "config.json").write_text(json.dumps({"hop_size": 128}))
    assert isinstance(load_vocoder(path, AudioConfig()), TorchScriptVocoder)
