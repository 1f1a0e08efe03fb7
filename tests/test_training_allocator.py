"""--allocator: a training command from the shell restarts itself once with jemalloc preloaded, and
reports the allocator that is really mapped into the process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from prosody_vae.cli import main
from prosody_vae.training.allocator import active_allocator, find_allocator, use_allocator

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="LD_PRELOAD and /proc are Linux's"
)


def _train(config, out, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PROSODY_VAE_ALLOCATOR")}
    argv = [sys.executable, "-m", "prosody_vae.cli", "train", "--config", str(config), "--out", str(out)]
    argv += ["--max-steps", "1", "--threads", "1", *extra]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.skipif(
    find_allocator("jemalloc") is None, reason="jemalloc is not installed (scripts/setup.sh installs it)"
)
def test_training_from_the_shell_runs_on_jemalloc(tiny_config_file, tmp_path) -> None:
    config = tiny_config_file()
    default = _train(config, tmp_path / "auto")
    assert default.returncode == 0, default.stderr
    assert (
        "[train] memory allocator: jemalloc" in default.stdout
    )  # read from /proc/self/maps after the restart
    assert (tmp_path / "auto" / "checkpoints" / "step_1.pt").is_file()
    system = _train(config, tmp_path / "system", "--allocator", "system", "--low-memory")
    assert system.returncode == 0, system.stderr
    assert "[train] memory allocator: system" in system.stdout
    low = _train(config, tmp_path / "low", "--low-memory")
    assert low.returncode == 0 and "--low-memory: jemalloc needs no setting" in low.stdout


def test_inside_a_python_process_nothing_restarts(tiny_config_file, tmp_path, capsys) -> None:
    active = active_allocator()
    assert use_allocator("auto", restart=False) == active  # never replaces the caller's process
    assert use_allocator("system", restart=False) == active
    wanted = "tcmalloc" if active == "jemalloc" else "jemalloc"
    argv = ["train", "--config", str(tiny_config_file()), "--out", str(tmp_path / "x"), "--allocator", wanted]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --allocator {wanted}: "), err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="unknown allocator"):
        use_allocator("mimalloc", restart=False)
