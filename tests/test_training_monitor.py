"""TensorBoard after a resume: every training and validation step shows exactly once.

A run is stopped after logging past its last checkpoint (as a crash or a kill does), then resumed;
the event files are read back with TensorBoard's own ``EventAccumulator``, which applies the purge
the resumed writer records, as the TensorBoard UI does.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from prosody_vae.config import load_config
from prosody_vae.training.loop import train
from prosody_vae.training.monitor import purge_step

pytestmark = pytest.mark.slow


def _steps(logdir, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def test_purge_keeps_the_resume_step_and_drops_what_follows():
    assert purge_step(0) == 1
    assert purge_step(4) == 5


def test_resume_shows_each_step_once_including_the_validation_at_the_resume_step(tiny_config_file, tmp_path):
    torch.set_num_threads(1)
    config = load_config(
        tiny_config_file(train={"steps": 4, "log_every": 1, "valid_every": 2, "checkpoint_every": 2})
    )
    out = tmp_path / "exp"
    train(config, out, progress=False)  # logs steps 1-4, validates at 2 and 4, checkpoints at 2 and 4
    # The run "crashed" after logging steps 3 and 4 but before its step-4 checkpoint reached disk.
    for name in ("step_4.pt", "best.pt"):
        (out / "checkpoints" / name).unlink(missing_ok=True)
    assert _steps(out / "tensorboard", "valid/kl") == [2, 4]
    resumed = train(config, out, resume=True, progress=False)  # from step 2: logs 3 and 4 again
    assert resumed.step == 4
    train_steps = _steps(out / "tensorboard", "train/kl")
    valid_steps = _steps(out / "tensorboard", "valid/kl")
    # Purging from the resume step itself would drop train step 2 and the validation at step 2,
    # which the resumed run never writes again; not purging would show steps 3 and 4 twice.
    assert sorted(train_steps) == [1, 2, 3, 4], Counter(train_steps)
    assert sorted(valid_steps) == [2, 4], Counter(valid_steps)
