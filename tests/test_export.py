"""Export: the TorchScript (and ONNX) prosody encoder gives the eager module's embedding, padding included."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from prosody_vae.audio import AudioConfig
from prosody_vae.checkpoint import save_checkpoint
from prosody_vae.cli import main
from prosody_vae.config import ExperimentConfig
from prosody_vae.inference.export import export_prosody_encoder, read_export_metadata
from prosody_vae.prosody.vae import CapacitronVAE
from prosody_vae.text import build_tokenizer
from prosody_vae.tts.model import build_model

N_MELS = 20


def _trained_like(*, text: bool, speakers: bool) -> tuple[CapacitronVAE, nn.Embedding, nn.Embedding]:
    """A small prosody module with non-trivial batch-norm statistics (one training-mode pass)."""
    torch.manual_seed(0)
    vae = CapacitronVAE(
        n_mels=N_MELS,
        latent_dim=4,
        reference_encoder={"channels": (8, 8, 16), "rnn_size": 16},
        text_embedding_dim=8 if text else 0,
        text_summary_dim=6,
        speaker_dim=3 if speakers else 0,
    )
    tokens, speaker_table = nn.Embedding(12, 8), nn.Embedding(3, 3)
    vae.train()
    with torch.no_grad():
        vae.encode(
            torch.randn(4, 50, N_MELS) * 2 + 1,
            torch.tensor([50, 20, 33, 41]),
            text=tokens(torch.randint(1, 12, (4, 5))) if text else None,
            text_lengths=torch.tensor([5, 2, 3, 4]) if text else None,
            speaker=speaker_table(torch.tensor([0, 1, 2, 1])) if speakers else None,
        )
    return vae.eval(), tokens, speaker_table


def _padded_batch():
    """Three items of different lengths; the padding holds large garbage that must not matter."""
    gen = torch.Generator().manual_seed(1)
    lengths = torch.tensor([12, 45, 30])
    mel = torch.randn(3, 45, N_MELS, generator=gen)
    token_lengths = torch.tensor([9, 3, 5])
    tokens = torch.randint(1, 12, (3, 9), generator=gen)
    for i in range(3):
        mel[i, lengths[i] :] = 1e3
        tokens[i, token_lengths[i] :] = 0
    return mel, lengths, tokens, token_lengths, torch.tensor([0, 2, 1])


def _eager(vae, table, speaker_table, mel, lengths, tokens, token_lengths, speakers):
    with torch.no_grad():
        return vae.encode(
            mel,
            lengths,
            text=table(tokens) if vae.uses_text else None,
            text_lengths=token_lengths if vae.uses_text else None,
            speaker=speaker_table(speakers) if vae.speaker_dim else None,
        )


@pytest.mark.parametrize("text", [False, True])
@pytest.mark.parametrize("speakers", [False, True])
def test_torchscript_matches_eager_on_padded_batch(tmp_path, text, speakers):
    vae, table, speaker_table = _trained_like(text=text, speakers=speakers)
    audio = AudioConfig(n_mels=N_MELS, hop_length=200)
    path = export_prosody_encoder(
        vae,
        tmp_path / "enc.pt",
        audio=audio,
        token_embedding=table if text else None,
        speaker_embedding=speaker_table if speakers else None,
    )
    mel, lengths, tokens, token_lengths, speaker_ids = _padded_batch()
    expected = _eager(vae, table, speaker_table, mel, lengths, tokens, token_lengths, speaker_ids)

    module = torch.jit.load(str(path))
    kwargs = {}
    if text:
        kwargs.update(tokens=tokens, token_lengths=token_lengths)
    if speakers:
        kwargs["speakers"] = speaker_ids
    mean, std = module(mel, lengths, **kwargs)
    torch.testing.assert_close(mean, expected.mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(std, expected.std, atol=1e-5, rtol=0)
    # Each item alone gives the same embedding as in the padded batch.
    for i in range(3):
        alone = {k: v[i : i + 1] for k, v in kwargs.items()}
        if text:
            alone["tokens"] = tokens[i : i + 1, : token_lengths[i]]
        mean_i, _ = module(mel[i : i + 1, : lengths[i]], lengths[i : i + 1], **alone)
        torch.testing.assert_close(mean_i[0], mean[i], atol=1e-5, rtol=0)

    assert module.hop_length == 200 and module.n_mels == N_MELS and module.latent_dim == 4
    meta = read_export_metadata(path)
    assert meta["audio"]["hop_length"] == 200 and meta["uses_text"] == text
    assert meta["n_speakers"] == (3 if speakers else 1)


def test_torchscript_module_rejects_bad_input(tmp_path):
    vae, table, _ = _trained_like(text=True, speakers=False)
    path = export_prosody_encoder(
        vae, tmp_path / "enc.pt", audio=AudioConfig(n_mels=N_MELS), token_embedding=table
    )
    module = torch.jit.load(str(path))
    mel, lengths, tokens, token_lengths, _ = _padded_batch()
    with pytest.raises(Exception, match="n_mels|shape"):
        module(torch.zeros(2, 10, N_MELS + 1), torch.tensor([10, 5]), tokens[:2], token_lengths[:2])
    with pytest.raises(Exception, match="reference transcript"):
        module(mel, lengths)
    with pytest.raises(Exception, match=r"lie in \[1, 45\]"):
        module(mel, torch.tensor([12, 46, 30]), tokens, token_lengths)


def test_export_refuses_mismatched_audio_and_missing_tables(tmp_path):
    vae, _, _ = _trained_like(text=True, speakers=False)
    with pytest.raises(ValueError, match="n_mels"):
        export_prosody_encoder(vae, tmp_path / "a.pt", audio=AudioConfig(n_mels=80))
    with pytest.raises(ValueError, match="token_embedding"):
        export_prosody_encoder(vae, tmp_path / "a.pt", audio=AudioConfig(n_mels=N_MELS))
    with pytest.raises(ValueError, match="unknown export format"):
        export_prosody_encoder(vae, tmp_path / "a.pt", audio=AudioConfig(n_mels=N_MELS), format="tflite")


@pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="ONNX export needs the [onnx] extra (onnx, onnxruntime)",
)
def test_onnx_matches_eager_on_padded_batch(tmp_path):
    import onnxruntime

    vae, table, speaker_table = _trained_like(text=True, speakers=True)
    path = export_prosody_encoder(
        vae,
        tmp_path / "enc.onnx",
        audio=AudioConfig(n_mels=N_MELS),
        token_embedding=table,
        speaker_embedding=speaker_table,
        format="onnx",
    )
    mel, lengths, tokens, token_lengths, speaker_ids = _padded_batch()
    expected = _eager(vae, table, speaker_table, mel, lengths, tokens, token_lengths, speaker_ids)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        "mel": mel,
        "lengths": lengths,
        "tokens": tokens,
        "token_lengths": token_lengths,
        "speakers": speaker_ids,
    }
    mean, std = session.run(["mean", "std"], {k: v.numpy() for k, v in feeds.items()})
    torch.testing.assert_close(torch.from_numpy(mean), expected.mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.from_numpy(std), expected.std, atol=1e-5, rtol=0)
    assert read_export_metadata(path)["audio"]["n_mels"] == N_MELS


def test_cli_export_round_trip(tmp_path, capsys):
    """A checkpoint as training writes it -> ``prosody-vae export`` -> the model's own eval-mode posterior."""
    from conftest import TINY_MODEL

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["text"] = {"tokenizer": "characters"}
    raw["audio"] = {"n_mels": N_MELS}
    config = ExperimentConfig.from_dict(raw)
    tokenizer = build_tokenizer("characters")
    torch.manual_seed(0)
    model = build_model(config, n_symbols=tokenizer.vocab_size)
    checkpoint = save_checkpoint(
        tmp_path / "c.pt",
        {
            "config": config.to_dict(),
            "tokenizer": tokenizer.config(),
            "speakers": ["default"],
            "model": model.state_dict(),
        },
    )
    out = tmp_path / "enc.pt"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--threads", "1"]) == 0
    assert "tokens" in capsys.readouterr().out  # the default config's posterior reads the transcript

    mel, lengths, _, _, _ = _padded_batch()
    first, second = tokenizer.encode("a b c"), tokenizer.encode("hey")
    tokens = torch.tensor([first, second + [7] * (len(first) - len(second))])  # garbage padding
    token_lengths = torch.tensor([len(first), len(second)])
    model.eval()
    with torch.no_grad():
        expected = model.encode_prosody(mel[:2], lengths[:2], tokens=tokens, token_lengths=token_lengths)
    mean, std = torch.jit.load(str(out))(mel[:2], lengths[:2], tokens=tokens, token_lengths=token_lengths)
    torch.testing.assert_close(mean, expected.z, atol=1e-5, rtol=0)
    torch.testing.assert_close(std, expected.std, atol=1e-5, rtol=0)

    assert main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
    assert "missing.pt" in capsys.readouterr().err


def _relative_f0_checkpoint(tmp_path):
    """A multi-speaker checkpoint whose posterior reads the reference's F0 relative to its voice (the
    multi-voice recipe's), its model (eval mode) and its tokenizer."""
    from conftest import TINY_MODEL

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["text"] = {"tokenizer": "characters"}
    raw["audio"] = {"n_mels": N_MELS}
    raw["prosody"].update(
        speaker_dim=3, speaker_dropout=0.3, reference_pitch=True, reference_pitch_relative=True
    )
    config = ExperimentConfig.from_dict(raw)
    tokenizer = build_tokenizer("characters")
    torch.manual_seed(0)
    model = build_model(config, n_symbols=tokenizer.vocab_size, n_speakers=3)
    model.voice_pitch.set_table([95.0, 180.0, 130.0])
    with torch.no_grad():
        model.prosody.unknown_speaker.normal_()  # trained by dropout in a real run; not zero here
        for parameter in model.prosody.pitch_encoder.parameters():  # its output starts at zero
            parameter.normal_(0.0, 0.3)
    checkpoint = save_checkpoint(
        tmp_path / "c.pt",
        {
            "config": config.to_dict(),
            "tokenizer": tokenizer.config(),
            "speakers": ["a", "b", "c"],
            "model": model.state_dict(),
        },
    )
    return checkpoint, model.eval(), tokenizer


def _model_posterior(model, inputs):
    """The model's own posterior of the encoder's inputs (mel, lengths, tokens, token_lengths,
    speakers, f0, voice_f0)."""
    mel, lengths, tokens, token_lengths, speakers, f0, voice_f0 = inputs
    with torch.no_grad():
        return model.prosody_posterior(
            mel,
            lengths,
            tokens=tokens,
            token_lengths=token_lengths,
            speakers=speakers,
            f0=f0,
            voice_f0=voice_f0,
        )


def _relative_f0_batch(model, tokenizer):
    """A padded batch with F0 (unvoiced frames, padding garbage): a training voice, a voice outside
    the table with its mean F0 given, another training voice; the encoder's inputs in order, and the
    model's own posterior of them (told the table's entries for the known voices)."""
    mel, lengths, _, _, _ = _padded_batch()
    gen = torch.Generator().manual_seed(2)
    f0 = 100.0 + 80.0 * torch.rand(3, mel.shape[1], generator=gen)
    f0[:, ::4] = 0.0  # unvoiced frames
    for i in range(3):
        f0[i, lengths[i] :] = 999.0  # padding garbage
    tokens = torch.tensor([tokenizer.encode("abc"), tokenizer.encode("hey"), tokenizer.encode("a b")])
    token_lengths = torch.tensor([3, 3, 3])
    speakers = torch.tensor([1, -1, 0])  # item 1: a voice outside the table, its mean F0 given
    voice_f0 = torch.tensor([180.0, 210.0, 95.0])  # what the synthesiser passes: table entries, or given
    # the model told the table's entries for the known voices (0: not given)
    expected = _model_posterior(
        model, (mel, lengths, tokens, token_lengths, speakers, f0, torch.tensor([0.0, 210.0, 0.0]))
    )
    return (mel, lengths, tokens, token_lengths, speakers, f0, voice_f0), expected


def test_an_encoder_that_reads_f0_relative_to_the_voice_exports_with_f0_inputs(tmp_path, capsys):
    """A multi-speaker checkpoint whose posterior reads the reference's F0 relative to its voice (the
    multi-voice recipe's) -> ``prosody-vae export`` -> the model's own posterior, with training voices,
    an unknown voice with its mean F0 given, and padding."""
    checkpoint, model, tokenizer = _relative_f0_checkpoint(tmp_path)
    out = tmp_path / "enc.pt"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--threads", "1"]) == 0
    assert "f0, voice_f0" in capsys.readouterr().out
    meta = read_export_metadata(out)
    assert meta["reads_f0"] and meta["voice_f0_hz"] == pytest.approx([95.0, 180.0, 130.0])

    inputs, expected = _relative_f0_batch(model, tokenizer)
    mel, lengths, tokens, token_lengths, speakers, f0, voice_f0 = inputs
    module = torch.jit.load(str(out))
    mean, std = module(mel, lengths, tokens, token_lengths, speakers, f0, voice_f0)
    torch.testing.assert_close(mean, expected.mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(std, expected.std, atol=1e-5, rtol=0)
    # the voice's mean matters, and so does the unknown voice
    moved, _ = module(mel, lengths, tokens, token_lengths, speakers, f0, voice_f0 * 1.5)
    assert not torch.allclose(moved, mean, atol=1e-4)
    with pytest.raises(Exception, match="pass f0"):
        module(mel, lengths, tokens, token_lengths, speakers)
    with pytest.raises(Exception, match="pass voice_f0"):
        module(mel, lengths, tokens, token_lengths, speakers, f0)
    with pytest.raises(Exception, match=r"lie in \[-1, 2\]"):
        module(mel, lengths, tokens, token_lengths, torch.tensor([1, -2, 0]), f0, voice_f0)


@pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="ONNX export needs the [onnx] extra (onnx, onnxruntime)",
)
def test_onnx_encoder_that_reads_f0_takes_its_inputs_by_name(tmp_path):
    """The same F0-reading encoder as ONNX: its inputs, speakers, f0 and voice_f0 included, bound by
    name, give the model's own posterior."""
    import onnxruntime

    checkpoint, model, tokenizer = _relative_f0_checkpoint(tmp_path)
    out = tmp_path / "enc.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--format", "onnx"]) == 0
    inputs, expected = _relative_f0_batch(model, tokenizer)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = ["mel", "lengths", "tokens", "token_lengths", "speakers", "f0", "voice_f0"]
    assert [i.name for i in session.get_inputs()] == names
    mean, std = session.run(["mean", "std"], {n: v.numpy() for n, v in zip(names, inputs, strict=True)})
    torch.testing.assert_close(torch.from_numpy(mean), expected.mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.from_numpy(std), expected.std, atol=1e-5, rtol=0)


def test_onnx_encoder_reads_a_missing_voice_f0_as_the_model_does(tmp_path):
    """ONNX cannot refuse a voice_f0 <= 0 (or nan) as the TorchScript front does; the graph then does
    what the model does: a training voice's table entry, else the reference's own mean F0."""
    import onnxruntime

    checkpoint, model, tokenizer = _relative_f0_checkpoint(tmp_path)
    out = tmp_path / "enc.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out), "--format", "onnx"]) == 0
    (mel, lengths, tokens, token_lengths, speakers, f0, _), _ = _relative_f0_batch(model, tokenizer)
    missing = torch.tensor([-1.0, float("nan"), 0.0])  # a known voice, the unknown one, a known voice
    expected = _model_posterior(model, (mel, lengths, tokens, token_lengths, speakers, f0, missing))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = ["mel", "lengths", "tokens", "token_lengths", "speakers", "f0", "voice_f0"]
    inputs = (mel, lengths, tokens, token_lengths, speakers, f0, missing)
    mean, _ = session.run(["mean", "std"], {n: v.numpy() for n, v in zip(names, inputs, strict=True)})
    torch.testing.assert_close(torch.from_numpy(mean), expected.mean, atol=1e-5, rtol=0)
    # and it is not the same as being told another level: the fallback is really used
    told = torch.tensor([400.0, 400.0, 400.0])
    other, _ = session.run(
        ["mean", "std"], {n: v.numpy() for n, v in zip(names, (*inputs[:6], told), strict=True)}
    )
    assert float(abs(other - mean).max()) > 1e-3
