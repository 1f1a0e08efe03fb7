"""HiFi-GAN generator checkpoints in the original release's format, loaded through ``--vocoder``."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from prosody_vae.audio import AudioConfig, log_mel
from prosody_vae.audio.hifigan import HifiGanConfig, HifiGanGenerator, HifiGanVocoder, fold_weight_norm
from prosody_vae.audio.vocoders import VocoderError, load_vocoder

AUDIO = AudioConfig()


def release_config(**overrides) -> dict:
    """A tiny generator's config.json in the release's layout (hop 256 = 8 * 8 * 4)."""
    config = {
        "resblock": "1",
        "upsample_rates": [8, 8, 4],
        "upsample_kernel_sizes": [16, 16, 8],
        "upsample_initial_channel": 32,
        "resblock_kernel_sizes": [3, 5],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
        "segment_size": 8192,  # training-only keys are ignored
        "learning_rate": 0.0002,
        "num_mels": 80,
        "num_freq": 1025,
        "n_fft": 1024,
        "hop_size": 256,
        "win_size": 1024,
        "sampling_rate": 22050,
        "fmin": 0,
        "fmax": 8000,
        "fmax_for_loss": None,
    }
    config.update(overrides)
    return config


def weight_normed_generator(config: dict, seed: int = 0) -> nn.Module:
    """Our generator with torch's weight norm on every convolution, as in training, random g and v."""
    generator = HifiGanGenerator.from_config(HifiGanConfig.from_dict(config, "<test>"))
    for module in list(generator.modules()):
        if isinstance(module, nn.Conv1d | nn.ConvTranspose1d):
            weight_norm(module)
    generator.eval()
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # gains near 1 and small biases, so that the output depends on the mels
        for name, parameter in generator.named_parameters():
            if name.endswith("original0"):  # g
                parameter.copy_(0.5 + torch.rand(parameter.shape, generator=rng))
            elif name.endswith("bias"):
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=rng))
            else:  # v
                parameter.copy_(torch.randn(parameter.shape, generator=rng))
    return generator


def release_state_dict(generator: nn.Module) -> dict:
    """The state dict as the release saves it: torch.nn.utils.weight_norm's weight_g/weight_v keys."""
    renamed = {}
    for key, value in generator.state_dict().items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        renamed[key.replace(".parametrizations.weight.original1", ".weight_v")] = value.clone()
    return renamed


def write_release(
    folder, config: dict, state_dict: dict, name: str = "g_00000042", config_name="config.json"
):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"generator": state_dict}, folder / name)
    (folder / config_name).write_text(json.dumps(config, indent=4))
    return folder / name


@pytest.mark.parametrize(
    "overrides", [{}, {"resblock": "2", "resblock_dilation_sizes": [[1, 2], [2, 6]]}], ids=["v1", "v3"]
)
def test_release_checkpoint_round_trip(tmp_path, overrides):
    config = release_config(**overrides)
    generator = weight_normed_generator(config)
    state = release_state_dict(generator)
    assert {"conv_pre.weight_g", "conv_pre.weight_v", "ups.0.weight_g", "conv_post.bias"} <= set(state)
    assert (
        "resblocks.0.convs1.0.weight_v" if config["resblock"] == "1" else "resblocks.0.convs.1.weight_g"
    ) in state
    path = write_release(tmp_path, config, state)

    vocoder = load_vocoder(path, AUDIO)
    assert isinstance(vocoder, HifiGanVocoder)
    mels = torch.randn(2, 7, 80)
    wav = vocoder(mels)
    assert wav.shape == (2, 7 * 256)
    with torch.no_grad():
        expected = generator(mels)
    assert torch.equal(wav, expected)  # bit for bit: the folded weights are the trained ones
    assert (wav[0] - wav[1]).abs().mean() > 0.01  # the output follows the mels: the check is not vacuous
    torch.testing.assert_close(vocoder(mels[1]), wav[1])  # one utterance (T, n_mels) -> (T * hop,)
    # Other weights give another waveform: the loaded weights are the ones used.
    other = write_release(
        tmp_path / "other", config, release_state_dict(weight_normed_generator(config, seed=1))
    )
    assert not torch.allclose(load_vocoder(other, AUDIO)(mels), wav, atol=1e-3)


def release_forward(state: dict, config: dict, mels: torch.Tensor) -> torch.Tensor:
    """The release's generator written out as functions of its state dict: (B, n_mels, T) -> (B, 1, N).

    Independent of HifiGanGenerator's modules, so slopes, paddings and the order of operations are
    checked against the paper's description rather than against themselves.
    """

    def weight(prefix):
        return torch._weight_norm(state[f"{prefix}.weight_v"], state[f"{prefix}.weight_g"], 0)

    def conv(prefix, x, dilation=1):
        w = weight(prefix)
        padding = (w.shape[-1] - 1) * dilation // 2
        return F.conv1d(x, w, state[f"{prefix}.bias"], padding=padding, dilation=dilation)

    x = conv("conv_pre", mels)
    blocks = list(zip(config["resblock_kernel_sizes"], config["resblock_dilation_sizes"], strict=True))
    stages = zip(config["upsample_rates"], config["upsample_kernel_sizes"], strict=True)
    for i, (rate, kernel) in enumerate(stages):
        x = F.leaky_relu(x, 0.1)
        x = F.conv_transpose1d(
            x, weight(f"ups.{i}"), state[f"ups.{i}.bias"], stride=rate, padding=(kernel - rate) // 2
        )
        outputs = []
        for j, (_, dilations) in enumerate(blocks):
            prefix, y = f"resblocks.{i * len(blocks) + j}", x
            for m, dilation in enumerate(dilations):
                if config["resblock"] == "1":
                    inner = F.leaky_relu(conv(f"{prefix}.convs1.{m}", F.leaky_relu(y, 0.1), dilation), 0.1)
                    y = y + conv(f"{prefix}.convs2.{m}", inner)
                else:
                    y = y + conv(f"{prefix}.convs.{m}", F.leaky_relu(y, 0.1), dilation)
            outputs.append(y)
        x = torch.stack(outputs).sum(0) / len(blocks)
    return torch.tanh(conv("conv_post", F.leaky_relu(x)))  # the final leaky ReLU has torch's default slope


@pytest.mark.parametrize(
    "overrides", [{}, {"resblock": "2", "resblock_dilation_sizes": [[1, 2], [2, 6]]}], ids=["v1", "v3"]
)
def test_matches_the_release_forward_written_out(tmp_path, overrides):
    config = release_config(**overrides)
    state = release_state_dict(weight_normed_generator(config, seed=3))
    vocoder = load_vocoder(write_release(tmp_path, config, state), AUDIO)
    mels = torch.randn(2, 9, 80)
    with torch.no_grad():
        expected = release_forward(state, config, mels.transpose(1, 2))[:, 0]
    torch.testing.assert_close(vocoder(mels), expected, rtol=1e-5, atol=1e-5)


def test_detected_by_content_with_a_same_stem_config(tmp_path):
    """A misleading suffix does not matter, and ``<stem>.json`` wins over ``config.json``."""
    config = release_config()
    generator = weight_normed_generator(config)
    path = write_release(tmp_path, config, release_state_dict(generator), "generator.ts", "generator.json")
    (tmp_path / "config.json").write_text(json.dumps(release_config(hop_size=128, upsample_rates=[8, 4, 4])))
    mels = torch.randn(1, 5, 80)
    with torch.no_grad():
        assert torch.equal(load_vocoder(path, AUDIO)(mels), generator(mels))


def test_weight_norm_spellings_fold_to_the_same_weights():
    generator = weight_normed_generator(release_config())
    parametrized = generator.state_dict()  # torch's parametrizations.weight.original0/1 keys
    folded = fold_weight_norm(parametrized)
    assert folded.keys() == fold_weight_norm(release_state_dict(generator)).keys()
    assert not any("weight_g" in key or "original" in key for key in folded)
    with torch.no_grad():
        weight = generator.ups[1].weight  # what torch's own weight norm computes
    assert torch.equal(folded["ups.1.weight"], weight)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"hop_size": 128, "upsample_rates": [8, 4, 4], "upsample_kernel_sizes": [16, 8, 8]}, "hop_size 128"),
        ({"num_mels": 64}, "num_mels 64"),
        ({"fmax": 11025}, "fmax 11025"),
        ({"fmax": None}, "fmax 11025.0"),  # null: the release's (librosa's) Nyquist default
        ({"sampling_rate": 24000}, "sampling_rate 24000"),
        ({"win_size": 800}, "win_size 800"),
    ],
)
def test_front_end_mismatch_is_one_line_naming_the_field(tmp_path, overrides, expected):
    path = write_release(tmp_path, release_config(**overrides), {})
    with pytest.raises(VocoderError) as caught:
        load_vocoder(path, AUDIO)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and expected in message


def test_log_floor_other_than_the_release_is_refused(tmp_path):
    path = write_release(tmp_path, release_config(), {})
    with pytest.raises(VocoderError, match=r"log floor .* log_floor 0\.0001"):
        load_vocoder(path, AudioConfig(log_floor=1e-4))


def test_weights_that_do_not_fit_are_one_clear_error(tmp_path):
    config = release_config()
    state = release_state_dict(weight_normed_generator(config))

    def refused(state_dict, config=config) -> str:
        path = write_release(tmp_path, config, state_dict)
        with pytest.raises(VocoderError) as caught:
            load_vocoder(path, AUDIO)
        message = str(caught.value)
        assert "\n" not in message and str(path) in message
        return message

    without_layer = {k: v for k, v in state.items() if not k.startswith("resblocks.3.convs2.2.")}
    assert "missing resblocks.3.convs2.2.weight, resblocks.3.convs2.2.bias" in refused(without_layer)
    half_pair = {k: v for k, v in state.items() if k != "conv_post.weight_v"}
    assert "conv_post.weight_v missing" in refused(half_pair)
    fewer_blocks = release_config(resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]])
    assert "unexpected resblocks.3" in refused(state, fewer_blocks)
    wider = release_config(upsample_initial_channel=64)
    assert "conv_pre.weight has shape (32, 80, 7)" in refused(state, wider)
    assert "'generator' entry is not a state dict" in refused({"conv_pre.weight": [1.0]})


def test_config_problems_and_foreign_files(tmp_path):
    state = {"conv_pre.weight": torch.zeros(1)}
    lonely = tmp_path / "lonely" / "g_1"
    lonely.parent.mkdir()
    torch.save({"generator": state}, lonely)
    with pytest.raises(VocoderError, match="without its config.*g_1.json"):
        load_vocoder(lonely, AUDIO)
    bad = write_release(tmp_path / "bad", release_config(upsample_rates=[8, 8, 2]), state)
    with pytest.raises(VocoderError, match="multiply to 128, not hop_size 256"):
        load_vocoder(bad, AUDIO)
    incomplete = release_config()
    del incomplete["upsample_initial_channel"]
    with pytest.raises(VocoderError, match="lacks upsample_initial_channel"):
        load_vocoder(write_release(tmp_path / "incomplete", incomplete, state), AUDIO)
    torch.save({"model": state}, tmp_path / "acoustic.pt")
    with pytest.raises(VocoderError, match="expected a dict with a 'generator' entry, found keys model"):
        load_vocoder(tmp_path / "acoustic.pt", AUDIO)


def release_log_mel(wav: np.ndarray, config: AudioConfig) -> torch.Tensor:
    """The release's front end, written out: (n_fft - hop) / 2 reflect padding, uncentred magnitude
    STFT with 1e-9 under the root, librosa's Slaney filterbank, natural log floored at 1e-5. (T, n_mels)."""
    pad = (config.n_fft - config.hop_length) // 2
    y = torch.nn.functional.pad(torch.from_numpy(wav)[None, None], (pad, pad), mode="reflect")[0, 0]
    spec = torch.stft(
        y,
        config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=torch.hann_window(config.win_length),
        center=False,
        return_complex=True,
    )
    magnitude = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    basis = librosa.filters.mel(
        sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.f_min, fmax=config.f_max
    )
    return torch.log(torch.clamp(torch.from_numpy(basis) @ magnitude, min=1e-5)).T


def test_release_front_end_is_ours_half_a_hop_later():
    """What the module docstring claims: same frames, shifted by hop / 2, one frame fewer."""
    rng = np.random.default_rng(0)
    t = np.arange(22050) / 22050
    wav = (0.4 * np.sin(2 * np.pi * 220 * t * (1 + 0.2 * t)) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    theirs = release_log_mel(wav, AUDIO)
    ours = log_mel(wav, AUDIO)
    assert theirs.shape[0] == wav.size // 256 and ours.shape[0] == 1 + wav.size // 256
    shifted = log_mel(wav[128:], AUDIO)  # our frame t now centred on sample t * hop + hop / 2
    interior = slice(4, theirs.shape[0] - 4)  # away from the differently padded edges
    torch.testing.assert_close(shifted[interior], theirs[interior], rtol=0, atol=2e-3)
    # ... and without the shift the frames differ: the grids are not the same.
    assert (ours[interior] - theirs[interior]).abs().max() > 0.05
