"""Tacotron2 backbone: shapes, padding invariance, conditioning, free-running stops, losses, overfitting."""

from __future__ import annotations

import warnings

import pytest
import torch

from prosody_vae.prosody.masking import lengths_to_mask
from prosody_vae.tts.attention_metrics import diagonality
from prosody_vae.tts.backbones import Tacotron2
from prosody_vae.tts.backbones.auxiliary_losses import guided_attention_loss, stop_loss, stop_targets
from prosody_vae.tts.backbones.tacotron2 import stop_lengths

N_SYMBOLS, N_MELS = 12, 8


def _tiny(**overrides) -> Tacotron2:
    kwargs = dict(
        n_symbols=N_SYMBOLS,
        n_mels=N_MELS,
        r=2,
        embedding_dim=16,
        encoder_dim=16,
        attention_dim=8,
        attention_rnn_dim=16,
        decoder_dim=16,
        prenet_dim=8,
        postnet_dim=8,
        postnet_n_convs=3,
        dca_filter_size=5,
        location_kernel_size=5,
    )
    kwargs.update(overrides)
    return Tacotron2(**kwargs)


def _batch(token_lengths: list[int], mel_lengths: list[int], seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    tl, ml = torch.tensor(token_lengths), torch.tensor(mel_lengths)
    tokens = torch.randint(1, N_SYMBOLS, (len(tl), int(tl.max())), generator=generator)
    tokens = tokens * lengths_to_mask(tl)
    mels = torch.randn(len(ml), int(ml.max()), N_MELS, generator=generator) * lengths_to_mask(ml).unsqueeze(
        -1
    )
    return tokens, tl, mels, ml


@pytest.mark.parametrize("attention", ["dca", "location"])
@pytest.mark.parametrize("r", [1, 2, 3])
def test_forward_shapes_with_frames_not_a_multiple_of_r(r: int, attention: str) -> None:
    model = _tiny(r=r, attention=attention)
    tokens, tl, mels, ml = _batch([7, 4], [13, 10])
    out = model(tokens, tl, mels, ml)
    steps = -(-13 // r)
    assert out.mel.shape == out.mel_post.shape == (2, 13, N_MELS)
    assert out.stop_logits.shape == (2, 13)
    assert out.alignments.shape == (2, steps, 7)
    assert (out.mel[1, 10:] == 0).all() and (out.mel_post[1, 10:] == 0).all()
    assert torch.equal(model.decoder_lengths(ml), torch.tensor([steps, -(-10 // r)]))
    assert model.embed_tokens(tokens).shape == (2, 7, 16)
    out.mel_post.sum().backward()  # the graph reaches the parameters
    assert model.embedding.weight.grad is not None


@pytest.mark.parametrize("attention", ["dca", "location"])
def test_teacher_forcing_is_padding_invariant(attention: str) -> None:
    # Eval mode and prenet_dropout=0: the prenet's dropout stays on in eval mode by design
    # (Tacotron 2), so two passes only agree exactly with it switched off.
    model = _tiny(attention=attention, prenet_dropout=0.0, conditioning_dim=3).eval()
    tokens, tl, mels, ml = _batch([9, 5], [17, 11])
    conditioning = torch.randn(2, 3)
    batched = model(tokens, tl, mels, ml, conditioning)
    alone = model(tokens[1:, :5], tl[1:], mels[1:, :11], ml[1:], conditioning[1:])
    assert torch.allclose(batched.mel[1, :11], alone.mel[0], atol=1e-5)
    assert torch.allclose(batched.mel_post[1, :11], alone.mel_post[0], atol=1e-5)
    assert torch.allclose(batched.stop_logits[1, :11], alone.stop_logits[0], atol=1e-5)
    assert torch.allclose(batched.alignments[1, :6, :5], alone.alignments[0], atol=1e-5)
    assert (batched.alignments[1, :, 5:] == 0).all()


def test_conditioning_changes_the_output_and_is_checked() -> None:
    model = _tiny(conditioning_dim=4, prenet_dropout=0.0).eval()
    tokens, tl, mels, ml = _batch([6], [10])
    a = model(tokens, tl, mels, ml, torch.zeros(1, 4)).mel_post
    b = model(tokens, tl, mels, ml, torch.ones(1, 4)).mel_post
    assert not torch.allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="required"):
        model(tokens, tl, mels, ml)
    with pytest.raises(ValueError, match=r"\(1, 4\)"):
        model(tokens, tl, mels, ml, torch.zeros(1, 5))
    with pytest.raises(ValueError, match="conditioning_dim=0"):
        _tiny()(tokens, tl, mels, ml, torch.zeros(1, 4))


def test_input_validation() -> None:
    model = _tiny()
    tokens, tl, mels, ml = _batch([6], [10])
    with pytest.raises(TypeError, match="tokens"):
        model(tokens.float(), tl, mels, ml)
    with pytest.raises(ValueError, match="token_lengths"):
        model(tokens, torch.tensor([7]), mels, ml)
    with pytest.raises(ValueError, match="mel_lengths"):
        model(tokens, tl, mels, torch.tensor([0]))
    with pytest.raises(ValueError, match=f"{N_MELS}"):
        model(tokens, tl, mels[..., :5], ml)
    with pytest.raises(ValueError, match="attention"):
        _tiny(attention="gmm")


def test_prenet_dropout_stays_on_in_eval_mode() -> None:
    model = _tiny().eval()
    tokens, tl, mels, ml = _batch([6], [10])
    torch.manual_seed(1)
    a = model(tokens, tl, mels, ml).mel
    torch.manual_seed(2)
    b = model(tokens, tl, mels, ml).mel
    assert not torch.allclose(a, b)


def test_stop_lengths_helper() -> None:
    probs = torch.tensor([[0.9, 0.1, 0.2, 0.8, 0.9], [0.1, 0.1, 0.1, 0.1, 0.1], [0.6, 0.7, 0.1, 0.1, 0.1]])
    lengths, stopped = stop_lengths(probs, torch.tensor([1, 0, 0]), 0.5)
    # item 0: the early 0.9 is before its minimum, so it stops at frame 3; item 1 never stops.
    assert lengths.tolist() == [4, 5, 1] and stopped.tolist() == [True, False, True]


def _force_stop(model: Tacotron2, bias: float) -> None:
    with torch.no_grad():
        model.stop_projection.weight.zero_()
        model.stop_projection.bias.fill_(bias)


@pytest.mark.parametrize("r", [1, 3])
def test_infer_stops_each_item_after_its_own_text_minimum(r: int) -> None:
    model = _tiny(r=r).eval()
    _force_stop(model, 20.0)  # every frame says "stop": each item stops as soon as it may
    tokens, tl, _, _ = _batch([6, 3], [1, 1])
    out = model.infer(tokens, tl, max_steps=50, min_steps_per_token=1.0)
    expected = tl * r + 1  # first frame of decoder step tl (0-based) is the first stop allowed
    assert torch.equal(out.mel_lengths, expected)
    assert out.mel_post.shape == (2, int(expected.max()), N_MELS)
    assert (out.mel_post[1, expected[1] :] == 0).all() and (out.mel_post[1, : expected[1]] != 0).any()
    assert (out.stop_probs[1, expected[1] :] == 0).all()
    assert out.alignments.shape[1] == -(-int(expected.max()) // r)


def test_infer_warns_naming_items_that_never_stop() -> None:
    model = _tiny().eval()
    _force_stop(model, -20.0)
    tokens, tl, _, _ = _batch([6, 3], [1, 1])
    with pytest.warns(UserWarning, match=r"items \[0, 1\] did not stop within max_steps=7"):
        out = model.infer(tokens, tl, max_steps=7)
    assert out.mel_lengths.tolist() == [14, 14]


def test_infer_item_does_not_depend_on_the_rest_of_the_batch() -> None:
    model = _tiny(prenet_dropout=0.0, conditioning_dim=2).eval()
    tokens, tl, _, _ = _batch([8, 4], [1, 1])
    conditioning = torch.randn(2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batched = model.infer(tokens, tl, conditioning, max_steps=30)
        alone = model.infer(tokens[1:, :4], tl[1:], conditioning[1:], max_steps=30)
    n = int(alone.mel_lengths[0])
    assert int(batched.mel_lengths[1]) == n
    assert torch.allclose(batched.mel_post[1, :n], alone.mel_post[0, :n], atol=1e-5)


def test_infer_validates_arguments() -> None:
    model = _tiny()
    tokens, tl, _, _ = _batch([4], [1])
    with pytest.raises(ValueError, match="max_steps"):
        model.infer(tokens, tl, max_steps=0)
    with pytest.raises(ValueError, match="stop_threshold"):
        model.infer(tokens, tl, stop_threshold=1.5)


def test_stop_loss_targets_and_weighting() -> None:
    ml = torch.tensor([3, 5])
    assert stop_targets(ml, 5).tolist() == [[0, 0, 1, 1, 1], [0, 0, 0, 0, 1]]
    perfect = (stop_targets(ml, 5) * 2 - 1) * 30
    assert stop_loss(perfect, ml) < 1e-6
    wrong = -perfect  # every target mispredicted: positive targets cost pos_weight times more
    assert stop_loss(wrong, ml, pos_weight=5.0) > stop_loss(wrong, ml) * 2
    with pytest.raises(ValueError, match="pos_weight"):
        stop_loss(perfect, ml, pos_weight=0.0)


@pytest.fixture
def one_thread():
    # Matrices this small lose more to thread hand-offs than they gain, badly so on a busy 2-core box.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_tiny_model_overfits_two_pairs_and_aligns(one_thread) -> None:
    # Each token is held for 3 frames of its own random mel vector, so the target can only be
    # reproduced by attending to the right token at the right time.
    torch.manual_seed(0)
    n_mels, frames_per_token = 16, 3
    table = torch.randn(N_SYMBOLS, n_mels)
    tokens = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 3, 5, 0, 0, 0]])
    tl = torch.tensor([8, 5])
    ml = tl * frames_per_token
    mels = torch.zeros(2, int(ml.max()), n_mels)
    for b in range(2):
        mels[b, : ml[b]] = table[tokens[b, : tl[b]]].repeat_interleave(frames_per_token, 0)
    model = Tacotron2(
        n_symbols=N_SYMBOLS,
        n_mels=n_mels,
        r=2,
        embedding_dim=32,
        encoder_dim=32,
        attention_dim=32,
        attention_rnn_dim=64,
        decoder_dim=64,
        prenet_dim=32,
        postnet_dim=32,
        dropout=0.0,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    mask = lengths_to_mask(ml).unsqueeze(-1).float()
    dl = model.decoder_lengths(ml)

    def l1(pred: torch.Tensor) -> torch.Tensor:
        return ((pred - mels).abs() * mask).sum() / (mask.sum() * n_mels)

    history = []
    for _ in range(150):
        out = model(tokens, tl, mels, ml)
        guided = guided_attention_loss(out.alignments, tl, dl)
        loss = l1(out.mel) + l1(out.mel_post) + stop_loss(out.stop_logits, ml) + guided
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((l1(out.mel).item(), diagonality(out.alignments.detach(), tl, dl).mean().item()))
    (first_l1, first_diag), (last_l1, last_diag) = history[0], history[-1]
    assert last_l1 < 0.6 * first_l1
    assert last_diag > 0.9 and last_diag > first_diag + 0.2
