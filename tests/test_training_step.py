"""The training step as a library function: set-up, ``train_step`` on its own, and the same numbers
as the loop that composes them."""

from __future__ import annotations

import json

import pytest
import torch

from prosody_vae.config import load_config
from prosody_vae.training.loop import train
from prosody_vae.training.state import epoch_loader, setup_training
from prosody_vae.training.step import train_step

pytestmark = pytest.mark.slow


def _first_batch(state):
    return next(iter(epoch_loader(state)))


def _falling(values: list[float]) -> bool:
    return all(later < earlier for earlier, later in zip(values[:-1], values[1:], strict=True))


def test_train_step_on_its_own_lowers_the_loss_and_moves_beta_towards_the_capacity(
    tiny_config_file, tmp_path
):
    torch.set_num_threads(1)
    state = setup_training(load_config(tiny_config_file()), tmp_path, progress=False)
    batch = _first_batch(state)  # the same batch again and again: the loss must fall
    results = [train_step(state, batch) for _ in range(8)]
    state.monitor.close()
    assert [r.step for r in results] == list(range(1, 9)) and state.step == 8
    assert all(r.stepped and not r.skipped_nonfinite for r in results)
    reconstruction = [float(r.losses.decoder_l1 + r.losses.postnet_l1) for r in results]
    # falling at every step, by about 6 % over the 8 (measured); 2 % leaves a margin
    assert _falling(reconstruction), reconstruction
    assert reconstruction[-1] < 0.98 * reconstruction[0], reconstruction
    # KL below C (5 nats) at every step, so the ascent of beta on beta * (KL - C) lowers it each time
    kl = [float(r.losses.kl) for r in results]
    beta = [float(r.losses.beta) for r in results] + [float(state.objective.beta)]
    assert max(kl) < state.config.capacity.capacity
    assert _falling(beta), beta
    # and it logged what the loop logs
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 9))
    assert records[-1]["beta"] == pytest.approx(beta[-2])


def test_train_step_accumulates_before_it_updates(tiny_config_file, tmp_path):
    torch.set_num_threads(1)
    config = load_config(tiny_config_file(optim={"accumulation_steps": 2}))
    state = setup_training(config, tmp_path, progress=False)
    batch = _first_batch(state)
    beta = float(state.objective.beta)
    weights = [p.detach().clone() for p in state.optimizer.main_params]
    first = train_step(state, batch)
    assert not first.stepped and first.step == state.step == 0 and first.info.micro_step == 1
    assert float(state.objective.beta) == beta
    assert all(torch.equal(w, p) for w, p in zip(weights, state.optimizer.main_params, strict=True))
    second = train_step(state, batch)
    state.monitor.close()
    assert second.stepped and second.step == state.step == 1 and second.info.micro_step == 2
    assert float(state.objective.beta) != beta
    assert not all(torch.equal(w, p) for w, p in zip(weights, state.optimizer.main_params, strict=True))


def test_a_loop_of_train_steps_is_the_training_loop(tiny_config_file, tmp_path):
    torch.set_num_threads(1)
    config = load_config(tiny_config_file(train={"steps": 4}))
    train(config, tmp_path / "loop", progress=False, max_steps=4)
    state = setup_training(config, tmp_path / "own", progress=False)
    mine = []
    while state.step < 4:  # 3 batches per epoch: the fourth step starts the second epoch
        for batch in epoch_loader(state):
            mine.append(train_step(state, batch))
            if state.step == 4:
                break
        else:
            state.next_epoch()
    state.monitor.close()
    records = [
        json.loads(line)
        for line in (tmp_path / "loop" / "log.jsonl").read_text().splitlines()
        if '"lagrangian"' in line and "valid/" not in line
    ]
    assert [r["step"] for r in records] == [r.step for r in mine] == [1, 2, 3, 4]
    for record, result in zip(records, mine, strict=True):
        for key in ("lagrangian", "kl", "beta", "postnet_l1", "stop"):
            assert record[key] == pytest.approx(float(getattr(result.losses, key)), rel=1e-5), key
        assert record["grad_norm"] == pytest.approx(float(result.info.grad_norm), rel=1e-5)
    assert state.epoch == 1 and state.batches_done == 1
