"""The command line explains itself: help on every option with its default, fast --help, --version,
-v/-q, and the shipped model when --checkpoint is left out."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prosody_vae.cli import _parser, main
from prosody_vae.cli._registry import HelpFormatter

SCRIPT = Path(sys.executable).parent / "prosody-vae"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _options(p: argparse.ArgumentParser) -> list[argparse.Action]:
    skip = (argparse._HelpAction, argparse._VersionAction)
    return [a for a in p._actions if not isinstance(a, skip)]


def test_every_option_of_every_command_has_help_and_shows_its_default():
    commands = _subparsers()
    assert {"transfer", "sample", "interpolate", "traverse", "embed", "evaluate", "export", "demo"} <= set(
        commands
    )
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, p in commands.items()
        for action in _options(p)
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == [], f"options without help: {missing}"
    for name, p in commands.items():
        assert p.formatter_class is HelpFormatter, name
        text = " ".join(p.format_help().split())
        for action in _options(p):
            # identity, not ==: a default of 0 must be shown although 0 == False
            if (
                any(action.default is x for x in (None, False, argparse.SUPPRESS))
                or not action.option_strings
            ):
                continue
            # the help names the default: the formatter's "(default: X)" or the help's own words
            shown = f"(default: {action.default})" in text or "default" in action.help
            assert shown, f"{name} {action.option_strings[0]}: default {action.default!r} not shown"
    assert "(default: 32)" in " ".join(commands["transfer"].format_help().split())  # --gl-iters


def test_building_the_parser_loads_no_heavy_library():
    code = (
        "import sys, json\nfrom prosody_vae.cli import _parser\n_parser()\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    heavy = sorted(
        m
        for m in loaded
        if m.split(".")[0] in ("torch", "torchaudio", "librosa", "matplotlib", "soundfile", "scipy")
        or m.startswith(("prosody_vae.prosody", "prosody_vae.tts", "prosody_vae.inference"))
    )
    assert heavy == []
    assert "prosody_vae.cli.synthesis" in loaded  # every command was registered


@pytest.mark.parametrize("argv", [["--help"], ["transfer", "--help"]])
def test_help_answers_within_a_second(argv):
    assert SCRIPT.is_file(), f"{SCRIPT}: console script not installed"
    best = float("inf")
    for _ in range(3):  # the best of three: the machine may be busy with other work
        started = time.perf_counter()
        out = subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - started)
    assert "usage: prosody-vae" in out.stdout
    assert best < 1.0, f"prosody-vae {' '.join(argv)} took {best:.2f} s"


def test_version(capsys):
    from prosody_vae import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"prosody-vae {__version__}"


def test_verbose_and_quiet_set_the_log_level_before_or_after_the_command():
    parser = _parser()
    assert parser.parse_args(["embed", "a.wav"]).quiet is False
    assert parser.parse_args(["-q", "embed", "a.wav"]).quiet is True
    assert parser.parse_args(["embed", "a.wav", "-q"]).quiet is True
    assert parser.parse_args(["embed", "a.wav", "-v"]).verbose == 1
    assert parser.parse_args(["-v", "embed", "a.wav"]).verbose == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["embed", "a.wav", "-v", "-q"])  # one or the other


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit in the export
def test_without_checkpoint_the_shipped_model_is_used_and_said_once(tmp_path, capsys):
    from prosody_vae.inference.packed import builtin_model_path

    argv = ["export", "--out", str(tmp_path / "encoder.pt"), "--threads", "1"]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    notes = [line for line in err if "shipped model" in line]
    assert notes == [
        f"no --checkpoint given: using the shipped model {builtin_model_path()} (docs/pretrained.md)"
    ]
    assert (tmp_path / "encoder.pt").is_file()
    # -q keeps stderr for warnings and errors only
    assert main([*argv, "-q"]) == 0
    assert capsys.readouterr().err == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bars_show_on_a_terminal_unless_quiet(monkeypatch, quiet):
    from prosody_vae.cli._registry import progress_bar

    terminal, out = _Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", out)
    with progress_bar(argparse.Namespace(quiet=quiet), total=2, desc="work") as bar:
        print("wrote a.wav")
        bar.update()
    assert out.getvalue() == "wrote a.wav\n"  # results reach stdout whole, bar or not
    assert ("work:" in terminal.getvalue()) is not quiet
    # not a terminal (a log file, a pipe): no bar even without -q
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    with progress_bar(argparse.Namespace(quiet=False), total=2, desc="work") as bar:
        bar.update()
    assert plain.getvalue() == ""
