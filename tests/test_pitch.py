"""Explicit pitch: the likelihood terms, the decoder's pitch outputs, training them, and init_from."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import train_tiny

from prosody_vae.checkpoint import load_checkpoint
from prosody_vae.config import BackboneConfig
from prosody_vae.inference.synthesizer import Synthesizer
from prosody_vae.tts.backbones.tacotron2 import Tacotron2
from prosody_vae.tts.pitch import decode_pitch, pitch_nll
from prosody_vae.tts.pitch_contour import UtteranceContour
from prosody_vae.tts.pitch_refiner import PitchRefiner, attention_position, position_features


def _tiny_tacotron(**kwargs) -> Tacotron2:
    sizes = dict(embedding_dim=16, encoder_dim=16, attention_dim=8, attention_rnn_dim=16, decoder_dim=32)
    return Tacotron2(n_symbols=12, n_mels=8, r=2, prenet_dim=8, postnet_dim=8, **sizes, **kwargs)


def test_pitch_nll_matches_hand_computation():
    pitch = torch.tensor([[[math.log(100.0), 2.0], [math.log(110.0), -1.0], [5.0, 3.0]]])  # (1, 3, 2)
    f0 = torch.tensor([[120.0, 0.0, 200.0]])  # frame 1 unvoiced; frame 2 is padding (length 2)
    terms = pitch_nll(pitch, f0, torch.tensor([2]), scale=0.1)
    expected_log_f0 = abs(math.log(120.0) - math.log(100.0)) / 0.1  # only frame 0: voiced and valid
    bce = lambda logit, y: math.log1p(math.exp(-logit)) if y else math.log1p(math.exp(logit))  # noqa: E731
    assert terms.log_f0.item() == pytest.approx(expected_log_f0, rel=1e-5)
    assert terms.voicing.item() == pytest.approx(bce(2.0, 1) + bce(-1.0, 0), rel=1e-5)


def test_pitch_nll_ignores_padding_and_falls_with_better_predictions():
    f0 = torch.tensor([[100.0, 120.0, 0.0, 140.0]])
    good = torch.stack([torch.log(f0.clamp_min(1.0)), torch.where(f0 > 0, 5.0, -5.0)], dim=-1)
    bad = good + torch.tensor([0.3, 0.0])
    lengths = torch.tensor([4])
    assert (pitch_nll(good, f0, lengths).log_f0 < pitch_nll(bad, f0, lengths).log_f0).all()
    padded = torch.cat([good, torch.full((1, 3, 2), 9.0)], dim=1)
    padded_f0 = torch.cat([f0, torch.tensor([[300.0, 300.0, 300.0]])], dim=1)
    a, b = pitch_nll(good, f0, lengths), pitch_nll(padded, padded_f0, lengths)
    assert torch.allclose(a.log_f0, b.log_f0) and torch.allclose(a.voicing, b.voicing)


def test_decode_pitch_gates_by_voicing_and_length():
    pitch = torch.tensor([[[math.log(150.0), 3.0], [math.log(150.0), -3.0], [math.log(150.0), 3.0]]])
    f0 = decode_pitch(pitch, torch.tensor([2]))
    assert f0[0, 0].item() == pytest.approx(150.0, rel=1e-5)
    assert f0[0, 1].item() == 0.0 and f0[0, 2].item() == 0.0


def test_decoder_learns_a_contour_and_infers_one_per_frame():
    torch.manual_seed(0)
    model = _tiny_tacotron(pitch=True, pitch_init_hz=100.0)
    tokens, token_lengths = torch.randint(1, 12, (2, 6)), torch.tensor([6, 4])
    mels, mel_lengths = torch.randn(2, 13, 8), torch.tensor([13, 10])
    # a rising contour with an unvoiced gap, different per item
    f0 = torch.stack([torch.linspace(90, 160, 13), torch.linspace(180, 120, 13)])
    f0[:, 5:7] = 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        out = model(tokens, token_lengths, mels, mel_lengths)
        assert out.pitch.shape == (2, 13, 2)
        terms = pitch_nll(out.pitch, f0, mel_lengths)
        loss = (terms.log_f0 + terms.voicing).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # the teacher-forced prediction follows each item's own contour on its voiced frames
    predicted = decode_pitch(out.pitch.detach(), mel_lengths)
    for item in range(2):
        voiced = (f0[item] > 0) & (torch.arange(13) < mel_lengths[item])
        pair = torch.stack([torch.log(predicted[item][voiced].clamp_min(1.0)), torch.log(f0[item][voiced])])
        assert torch.corrcoef(pair)[0, 1] > 0.9
    model.eval()
    inferred = model.infer(tokens, token_lengths, max_steps=8)
    assert inferred.pitch.shape[:2] == inferred.mel_post.shape[:2]
    # frames past each item's length are zero
    short = int(inferred.mel_lengths.min())
    item = int(inferred.mel_lengths.argmin())
    assert inferred.pitch[item, short:].abs().sum() == 0


def test_model_without_pitch_has_none_and_torchaudio_refuses_pitch():
    model = _tiny_tacotron()
    out = model(torch.randint(1, 12, (1, 4)), torch.tensor([4]), torch.randn(1, 6, 8), torch.tensor([6]))
    assert out.pitch is None
    with pytest.raises(ValueError, match="does not predict pitch"):
        BackboneConfig(
            kind="torchaudio_tacotron2",
            r=1,
            attention="location",
            embedding_dim=32,
            encoder_dim=32,
            pitch=True,
        )


@pytest.mark.slow
def test_pitch_model_trains_synthesises_f0_and_init_from_keeps_weights(tiny_prepared: Path, tmp_path: Path):
    (tmp_path / "base").mkdir()
    (tmp_path / "pitch").mkdir()
    base = train_tiny(tmp_path / "base", tiny_prepared, steps=2)
    start = load_checkpoint(base)
    pitched = train_tiny(
        tmp_path / "pitch",
        tiny_prepared,
        steps=1,
        backbone={"pitch": True},
        train={"init_from": str(base), "log_every": 1, "valid_every": 1000, "checkpoint_every": 1000},
        optim={"lr": 1e-9, "lr_min": 1e-9, "warmup_steps": 1},  # one step that moves (almost) nothing
    )
    state = load_checkpoint(pitched)
    old, new = start["training_module"], state["training_module"]
    # every old weight was carried over (up to the one tiny step), the pitch head is new
    for key in ("model.backbone.embedding.weight", "model.prosody.posterior.mean.weight"):
        if key in old:
            assert torch.allclose(old[key], new[key], atol=1e-5)
    assert "model.backbone.pitch_projection.weight" in new
    beta_old = torch.nn.functional.softplus(old["objective.beta_raw"])
    beta_new = torch.nn.functional.softplus(new["objective.beta_raw"])
    assert beta_new.item() == pytest.approx(beta_old.item(), rel=0.05)  # beta carried over, one step moved
    synth = Synthesizer.from_checkpoint(pitched)
    result = synth.sample("A short test.", 1)[0]
    assert result.f0 is not None and result.f0.shape == (result.mel.shape[0],)
    assert (result.f0 >= 0).all()


def test_smooth_f0_removes_single_frame_jumps_and_keeps_slow_movement():
    from prosody_vae.tts.pitch import smooth_f0

    rise = torch.linspace(100.0, 150.0, 20)
    track = torch.cat([torch.zeros(3), rise, torch.zeros(3)])
    jumped = track.clone()
    jumped[10] = 200.0  # an octave-like jump for one frame
    smoothed = smooth_f0(jumped)
    assert (smoothed[track == 0] == 0).all()  # unvoiced stays unvoiced
    assert abs(smoothed[10].item() - track[10].item()) < 4.0
    inner = slice(6, 20)  # away from the run's edges the slow rise is kept
    assert torch.allclose(smoothed[inner], track[inner], rtol=0.03)
    with pytest.raises(ValueError, match="odd"):
        smooth_f0(track, width=4)


@pytest.mark.filterwarnings("ignore:Tacotron2.infer")  # the untrained decoder does not stop
def test_pitch_refiner_starts_as_no_change_is_padding_exact_and_reaches_inference():
    torch.manual_seed(0)
    plain = _tiny_tacotron(pitch=True, prenet_dropout=0.0)
    torch.manual_seed(0)
    refined = _tiny_tacotron(pitch=True, prenet_dropout=0.0, pitch_refiner_dim=8)
    assert refined.load_state_dict(plain.state_dict(), strict=False).missing_keys  # only the refiner's
    plain.eval(), refined.eval()
    tokens, token_lengths = torch.randint(1, 12, (2, 6)), torch.tensor([6, 4])
    mels, mel_lengths = torch.randn(2, 13, 8), torch.tensor([13, 9])
    mels[1, 9:] = 0.0
    # zero-initialised output: the same prediction as without a refiner
    assert torch.equal(
        refined(tokens, token_lengths, mels, mel_lengths).pitch,
        plain(tokens, token_lengths, mels, mel_lengths).pitch,
    )
    torch.nn.init.normal_(refined.pitch_refiner.out.weight, std=0.5)
    batched = refined(tokens, token_lengths, mels, mel_lengths).pitch
    assert not torch.allclose(batched, plain(tokens, token_lengths, mels, mel_lengths).pitch)
    # item 1 alone (shorter text and mel) gets the same refinement as inside the padded batch
    alone = refined(tokens[1:, :4], token_lengths[1:], mels[1:, :9], mel_lengths[1:]).pitch
    assert torch.allclose(batched[1, :9], alone[0], atol=1e-5)
    inferred = refined.infer(tokens, token_lengths, max_steps=6)
    plain_inferred = plain.infer(tokens, token_lengths, max_steps=6)
    assert torch.equal(inferred.mel_post, plain_inferred.mel_post)  # the refiner touches pitch only
    assert not torch.allclose(inferred.pitch, plain_inferred.pitch)


def test_pitch_refiner_needs_pitch():
    with pytest.raises(ValueError, match="pitch_refiner_dim"):
        _tiny_tacotron(pitch=False, pitch_refiner_dim=8)
    with pytest.raises(ValueError, match="needs backbone.pitch"):
        BackboneConfig(pitch=False, pitch_refiner_dim=8)


@pytest.mark.parametrize("refiner", [0, 8])
def test_context_pitch_ignores_the_decoder_state(refiner):
    """pitch_input="context": the pitch heads read the attention context only, so the decoder LSTM
    (which reads the previous real frames in teacher-forced training) cannot change the pitch."""
    tokens, token_lengths = torch.randint(1, 12, (2, 6)), torch.tensor([6, 4])
    mels, mel_lengths = torch.randn(2, 11, 8), torch.tensor([11, 8])
    for pitch_input in ("decoder", "context"):
        torch.manual_seed(0)
        model = _tiny_tacotron(
            pitch=True, prenet_dropout=0.0, pitch_refiner_dim=refiner, pitch_input=pitch_input
        )
        model.eval()
        if refiner:
            torch.nn.init.normal_(model.pitch_refiner.out.weight, std=0.5)
        before = model(tokens, token_lengths, mels, mel_lengths)
        with torch.no_grad():
            model.decoder_rnn.weight_ih.mul_(-2.0)
        after = model(tokens, token_lengths, mels, mel_lengths)
        assert not torch.allclose(before.mel, after.mel)
        assert torch.allclose(before.pitch, after.pitch) == (pitch_input == "context"), pitch_input
    with pytest.raises(ValueError, match="pitch_input"):
        _tiny_tacotron(pitch=True, pitch_input="mel")


def test_attention_position_matches_hand_values_and_ignores_padding():
    # item 0 (4 tokens) attends all on token 0, then half on tokens 2 and 3; item 1 (2 tokens, padded to
    # 4) on its last token
    weights = torch.tensor(
        [
            [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]],
            [[0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
        ]
    )
    position = attention_position(weights, torch.tensor([4, 2]))
    torch.testing.assert_close(position, torch.tensor([[0.5 / 4, 3.0 / 4], [1.5 / 2, 1.5 / 2]]))
    features = position_features(position)
    assert features.shape == (2, 2, 9)
    torch.testing.assert_close(features[..., 0], position)
    torch.testing.assert_close(features[0, 1, 1], torch.sin(torch.tensor(math.pi * 0.75)))


def test_position_refiner_starts_as_no_change_and_stays_padding_exact():
    tokens, token_lengths = torch.randint(1, 12, (2, 6)), torch.tensor([6, 4])
    mels, mel_lengths = torch.randn(2, 13, 8), torch.tensor([13, 9])
    mels[1, 9:] = 0.0
    torch.manual_seed(0)
    plain = _tiny_tacotron(pitch=True, prenet_dropout=0.0, pitch_refiner_dim=8)
    torch.manual_seed(0)
    placed = _tiny_tacotron(pitch=True, prenet_dropout=0.0, pitch_refiner_dim=8, pitch_refiner_position=True)
    missing = placed.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing == ["pitch_refiner.position.weight"]  # init_from a refiner without it works
    plain.eval(), placed.eval()
    torch.nn.init.normal_(plain.pitch_refiner.out.weight, std=0.5)
    placed.pitch_refiner.out.weight.data.copy_(plain.pitch_refiner.out.weight)
    before = placed(tokens, token_lengths, mels, mel_lengths).pitch
    assert torch.equal(before, plain(tokens, token_lengths, mels, mel_lengths).pitch)  # zero at first
    torch.nn.init.normal_(placed.pitch_refiner.position.weight, std=0.5)
    batched = placed(tokens, token_lengths, mels, mel_lengths).pitch
    assert not torch.allclose(batched, before)
    alone = placed(tokens[1:, :4], token_lengths[1:], mels[1:, :9], mel_lengths[1:]).pitch
    assert torch.allclose(batched[1, :9], alone[0], atol=1e-5)
    assert placed.infer(tokens, token_lengths, max_steps=6).pitch.shape[-1] == 2
    with pytest.raises(ValueError, match="pitch_refiner_dim"):
        _tiny_tacotron(pitch=True, pitch_refiner_position=True)
    with pytest.raises(ValueError, match="pitch_refiner_dim"):
        BackboneConfig(pitch=True, pitch_refiner_position=True)


@pytest.mark.parametrize("position", [False, True])
def test_only_a_position_aware_refiner_lets_a_constant_code_place_the_peak(position):
    """The conditioning reaches the context-only pitch path as the same vector at every step. Two
    codes (+1, -1) ask for a peak a third or two thirds into a 90-step utterance (about 3 s at r = 3):
    without the position the refiner sees the same input at every step more than its reach (14 steps)
    from the edges, so it cannot place a peak there."""
    torch.manual_seed(0)
    steps = 90
    refiner = PitchRefiner(in_dim=4, memory_dim=2, dim=16, r=1, position=position)
    torch.nn.init.normal_(refiner.out.weight, std=0.1)
    code = torch.tensor([1.0, -1.0])
    hidden = code.view(2, 1, 1).expand(2, steps, 4).contiguous()  # (B, S, in_dim): the code at every step
    memory = torch.zeros(2, 3, 2)
    u = (torch.arange(steps) + 0.5) / steps
    target = torch.stack(
        [torch.exp(-(((u - 0.3) / 0.07) ** 2)), torch.exp(-(((u - 0.7) / 0.07) ** 2))]
    )  # (B, S)
    mask = torch.ones(2, steps, dtype=torch.bool)
    optimiser = torch.optim.Adam(refiner.parameters(), lr=0.02)
    for _ in range(300):
        out = refiner(hidden, mask, memory, torch.tensor([3, 3]), position=u.expand(2, steps))[..., 0]
        loss = ((out - target) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    peak = out.detach().argmax(dim=1).float() / steps
    if position:
        assert loss.item() < 0.01, loss.item()
        assert abs(peak[0] - 0.3) < 0.05 and abs(peak[1] - 0.7) < 0.05
    else:
        assert loss.item() > 0.03, loss.item()  # away from the edges the output cannot follow either bump


def test_utterance_contour_matches_hand_values_and_masks_voicing_and_padding():
    contour = UtteranceContour(conditioning_dim=2, r=2)
    with torch.no_grad():
        contour.coefficients.weight.zero_()
        contour.coefficients.weight[0, 0] = 3.0  # c_t = 3 * z_0 * u_t: a rise over the utterance
    conditioning = torch.tensor([[1.0, 5.0], [-2.0, 5.0]])
    position = torch.tensor([[0.0, 0.5, 1.0], [0.25, 0.75, 0.9]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    out = contour(conditioning, position, mask)
    assert out.shape == (2, 6, 2)
    torch.testing.assert_close(out[0, :, 0], torch.tensor([0.0, 0.0, 1.5, 1.5, 3.0, 3.0]))
    torch.testing.assert_close(out[1, :, 0], torch.tensor([-1.5, -1.5, -4.5, -4.5, 0.0, 0.0]))
    assert torch.equal(out[..., 1], torch.zeros(2, 6))  # the voicing decision is left alone


def test_a_contour_shaped_error_reaches_z_through_the_contour_not_through_a_linear_head():
    """An error pattern along the utterance that sums to zero (too low at the peak, too high around
    it) gives a constant-z linear head no gradient into z; the contour's does, from the first step."""
    torch.manual_seed(0)
    steps = 40
    position = ((torch.arange(steps) + 0.5) / steps).unsqueeze(0)
    error = torch.where((position - 0.5).abs() < 0.15, 1.0, -0.3 / 0.7)  # (1, S)
    error = error - error.mean()
    z = torch.randn(1, 4, requires_grad=True)
    linear = torch.nn.Linear(4, 1)
    (linear(z).expand(1, steps) * error).sum().backward()
    assert z.grad.abs().max() < 1e-5
    z.grad = None
    contour = UtteranceContour(conditioning_dim=4, r=1)
    (contour(z, position, torch.ones(1, steps, dtype=torch.bool))[..., 0] * error).sum().backward()
    assert z.grad.abs().max() > 1e-4


def test_codes_and_the_contour_learn_to_place_a_peak_early_or_late():
    """Per-utterance codes (standing in for the posterior) and the contour, trained together from the
    contour's near-zero start, fit a peak a third into one utterance and two thirds into another."""
    torch.manual_seed(0)
    steps = 60
    u = ((torch.arange(steps) + 0.5) / steps).expand(2, steps)
    target = torch.stack([torch.exp(-(((u[0] - 0.3) / 0.12) ** 2)), torch.exp(-(((u[1] - 0.7) / 0.12) ** 2))])
    target = target - target.mean(dim=1, keepdim=True)
    codes = torch.nn.Parameter(0.01 * torch.randn(2, 4))
    contour = UtteranceContour(conditioning_dim=4, r=1)
    optimiser = torch.optim.Adam([codes, *contour.parameters()], lr=0.02)
    mask = torch.ones(2, steps, dtype=torch.bool)
    for _ in range(400):
        loss = ((contour(codes, u, mask)[..., 0] - target) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.1 * target.var().item(), loss.item()
    peak = contour(codes, u, mask)[..., 0].detach().argmax(dim=1).float() / steps
    assert abs(peak[0] - 0.3) < 0.07 and abs(peak[1] - 0.7) < 0.07


def test_tacotron_contour_starts_near_zero_is_padding_exact_and_needs_conditioning():
    tokens, token_lengths = torch.randint(1, 12, (2, 6)), torch.tensor([6, 4])
    mels, mel_lengths = torch.randn(2, 13, 8), torch.tensor([13, 9])
    mels[1, 9:] = 0.0
    conditioning = torch.randn(2, 3)
    torch.manual_seed(0)
    plain = _tiny_tacotron(pitch=True, prenet_dropout=0.0, conditioning_dim=3)
    torch.manual_seed(0)
    shaped = _tiny_tacotron(pitch=True, prenet_dropout=0.0, conditioning_dim=3, pitch_contour=True)
    assert shaped.load_state_dict(plain.state_dict(), strict=False).missing_keys == [
        "pitch_contour.coefficients.weight"
    ]
    plain.eval(), shaped.eval()
    before = plain(tokens, token_lengths, mels, mel_lengths, conditioning).pitch
    after = shaped(tokens, token_lengths, mels, mel_lengths, conditioning).pitch
    assert (after - before).abs().max() < 0.02  # log-F0: a fraction of a semitone
    with torch.no_grad():
        shaped.pitch_contour.coefficients.weight.normal_(std=0.5)
    batched = shaped(tokens, token_lengths, mels, mel_lengths, conditioning).pitch
    assert (batched - before).abs().max() > 0.05
    alone = shaped(tokens[1:, :4], token_lengths[1:], mels[1:, :9], mel_lengths[1:], conditioning[1:]).pitch
    assert torch.allclose(batched[1, :9], alone[0], atol=1e-5)
    inferred = shaped.infer(tokens, token_lengths, conditioning, max_steps=6)
    assert inferred.pitch.shape[:2] == inferred.mel_post.shape[:2]
    with pytest.raises(ValueError, match="pitch_contour"):
        _tiny_tacotron(pitch=True, pitch_contour=True)  # no conditioning to set it
    with pytest.raises(ValueError, match="pitch_contour"):
        BackboneConfig(pitch=False, pitch_contour=True)
