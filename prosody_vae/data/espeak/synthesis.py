"""espeak-ng synthesis with known prosody factors, and the built-in corpus built from it.

Three per-utterance factors (drawn in :mod:`prosody_vae.data.espeak.plan`) are passed to espeak-ng 1.51
(Debian package ``espeak-ng``):

* ``pitch``: the voice's pitch base, ``-p 0..99`` (espeak-ng's default is 50);
* ``pitch_range``: the intonation range, SSML ``<prosody range="N">`` with ``N`` in ``0..100``
  (read with ``-m``; 50 is the default, 0 nearly monotone). espeak-ng has no command-line flag for
  it; a plain number sets the absolute range (``x-low``, ``medium``, ``high``, ``x-high`` measured
  the same as 10, 50, 70, 90). A wider range also raises the mean F0 somewhat: the contour widens
  mostly upwards from the base;
* ``rate``: speaking rate, ``-s`` in approximate words per minute.

The realised prosody is then measured from the audio and stored beside the drawn factors, so that
users and tests can check that the labels are real (see ``docs/corpus.md``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import unicodedata
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
from tqdm import tqdm

from prosody_vae.audio import AudioConfig
from prosody_vae.data.espeak.labels import F0_METHOD, measure_prosody
from prosody_vae.data.espeak.plan import UtterancePlan, check_settings, corpus_settings, plan_corpus
from prosody_vae.data.manifest import Utterance, write_manifest

__all__ = [
    "ESPEAK_SAMPLE_RATE",
    "EspeakError",
    "build_corpus",
    "espeak_version",
    "phonemes",
    "synthesize",
]

# espeak-ng's native output rate; the corpus keeps it (it is also AudioConfig's default).
ESPEAK_SAMPLE_RATE = 22050
_INSTALL_HINT = "install it with `apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng`"


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed; the message names the binary or the text and says why."""


def _resolve(espeak: str) -> str:
    path = shutil.which(espeak)
    if path is None:
        raise EspeakError(f"espeak-ng binary {espeak!r} not found on PATH; {_INSTALL_HINT}")
    return path


def _run(args: list[str], *, text: str, espeak: str) -> str:
    """Run espeak-ng with ``text`` on stdin (never as an argument: a text starting with '-' would
    be read as an option) and return its stdout; raise EspeakError on failure."""
    command = [_resolve(espeak), *args]
    try:
        result = subprocess.run(command, input=text, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EspeakError(f"{command[0]}: could not run ({error}) for text {text!r}") from error
    if result.returncode != 0:
        raise EspeakError(
            f"{command[0]} exited with status {result.returncode} for text {text!r}: {result.stderr.strip()}"
        )
    return result.stdout


def espeak_version(*, espeak: str = "espeak-ng") -> str:
    """The version line of the espeak-ng binary, e.g. ``"eSpeak NG text-to-speech: 1.51 ..."``."""
    return _run(["--version"], text="", espeak=espeak).strip().splitlines()[0]


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return int(value)


def synthesize(
    text: str,
    *,
    pitch: int,
    pitch_range: int,
    rate: int,
    out_path: str | Path,
    voice: str = "en-us",
    amplitude: int = 100,
    espeak: str = "espeak-ng",
) -> Path:
    """Speak ``text`` with espeak-ng into a 22050 Hz mono 16-bit WAV at ``out_path``.

    Args:
        text: plain text (SSML special characters are escaped here).
        pitch: pitch base, ``-p``, 0..99.
        pitch_range: intonation range, SSML ``<prosody range>``, 0..100.
        rate: speaking rate in words per minute, ``-s``, 80..450 (espeak-ng's own limits).
        out_path: the WAV to write; written atomically (temporary file + ``os.replace``).
        voice: espeak-ng voice, optionally with a variant, e.g. ``"en-us+f3"``.
        amplitude: ``-a``, 0..200; it changes loudness only.
        espeak: name or path of the espeak-ng binary.

    Returns:
        ``Path(out_path)``.

    Raises:
        ValueError: a factor out of range or an empty text.
        EspeakError: espeak-ng is missing or fails.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    pitch = _check_int("pitch", pitch, 0, 99)
    pitch_range = _check_int("pitch_range", pitch_range, 0, 100)
    rate = _check_int("rate", rate, 80, 450)
    amplitude = _check_int("amplitude", amplitude, 0, 200)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ssml = f'<speak><prosody range="{pitch_range}">{escape(text)}</prosody></speak>'
    handle, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.stem}.", suffix=".wav.tmp")
    os.close(handle)
    try:
        args = ["-m", "--stdin", "-v", voice, "-p", str(pitch), "-s", str(rate), "-a", str(amplitude)]
        _run([*args, "-w", tmp_name], text=ssml, espeak=espeak)
        info = sf.info(tmp_name)
        if info.frames == 0 or info.samplerate != ESPEAK_SAMPLE_RATE:
            raise EspeakError(
                f"espeak-ng wrote {info.frames} frames at {info.samplerate} Hz for text {text!r} "
                f"(voice {voice!r}); expected audio at {ESPEAK_SAMPLE_RATE} Hz"
            )
        os.replace(tmp_name, out_path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return out_path


def phonemes(text: str, *, voice: str = "en-us", espeak: str = "espeak-ng") -> list[str]:
    """espeak-ng's IPA phonemes for ``text`` (stress and length marks folded into their phone).

    Used to measure speaking rate in phones per second; nothing is synthesised.
    """
    output = _run(["-q", "--stdin", "--ipa", "--sep=_", "-v", voice], text=text, espeak=espeak)
    phones = []
    for token in output.replace("_", " ").split():
        # Tokens made only of modifier marks (a stray stress mark, a tie) are not phones.
        if any(not unicodedata.category(char).startswith(("Lm", "Sk", "Mn")) for char in token):
            phones.append(token)
    return phones


def _valid_wav(path: Path) -> bool:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return False
    return info.frames > 0 and info.samplerate == ESPEAK_SAMPLE_RATE


def _render(
    plan: UtterancePlan, wav_path: Path, espeak: str, config: AudioConfig
) -> tuple[dict[str, float], bool] | str:
    """Synthesise (unless a valid wav exists) and measure one utterance; runs in a worker process.

    Returns the measured labels and whether the wav was synthesised in this call, or the error
    message of a per-utterance failure. Failures come back as text rather than as exceptions
    because not every exception class survives the pickling between processes.
    """
    try:
        synthesised = not _valid_wav(wav_path)
        if synthesised:
            synthesize(
                plan.text,
                pitch=plan.pitch,
                pitch_range=plan.pitch_range,
                rate=plan.rate,
                voice=plan.voice,
                out_path=wav_path,
                espeak=espeak,
            )
        measured = measure_prosody(wav_path, config=config)
        n_phones = len(phonemes(plan.text, voice=plan.voice, espeak=espeak))
    except (EspeakError, ValueError) as error:  # AudioError is a ValueError
        return f"{type(error).__name__}: {error}"
    measured.update(n_phones=float(n_phones), phones_per_s=n_phones / measured["duration_s"])
    return measured, synthesised


def _run_all(
    plans: list[UtterancePlan],
    wav_dir: Path,
    espeak: str,
    config: AudioConfig,
    num_workers: int,
    progress: bool,
) -> Iterator[tuple[str, tuple[dict[str, float], bool] | str]]:
    """Yield ``(id, result of _render)`` per plan, in completion order, with a progress bar."""
    jobs = [(plan, wav_dir / f"{plan.id}.wav", espeak, config) for plan in plans]
    with tqdm(total=len(plans), desc="espeak corpus", unit="utt", disable=not progress) as bar:
        if num_workers == 1:
            for job in jobs:
                yield job[0].id, _render(*job)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=num_workers) as executor:
            futures = {executor.submit(_render, *job): job[0].id for job in jobs}
            for future in as_completed(futures):
                yield futures[future], future.result()
                bar.update()


def _write_text(path: Path, text: str) -> None:
    """Write atomically (temporary file + ``os.replace``), so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_json(path: Path, data: dict) -> None:
    _write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def build_corpus(
    out_dir: str | Path,
    *,
    n_utterances: int = 1200,
    seed: int = 0,
    multi_speaker: bool = False,
    num_workers: int = 2,
    held_out_fraction: float = 0.05,
    espeak: str = "espeak-ng",
    progress: bool = True,
) -> Path:
    """Synthesise the built-in corpus into ``out_dir`` and return the path of its manifest.

    Writes ``out_dir/wavs/<id>.wav`` (22050 Hz), ``out_dir/manifest.jsonl`` (one
    :class:`~prosody_vae.data.manifest.Utterance` per line; speaker = espeak-ng voice; duration in
    seconds after silence trimming), ``out_dir/corpus.json`` (settings, espeak-ng version, counts)
    and ``out_dir/held_out_texts.txt``: the text of every held-out utterance, one per line. Training
    texts are distinct, so this file names exactly the held-out utterances; give it to
    ``prepare_corpus(held_out_texts=...)`` (``--held-out-texts``) to put them all in the test split.
    Each utterance's ``labels`` hold the drawn factors (``pitch``, ``pitch_range``, ``rate``,
    ``voice_index``), the held-out flags (``held_out_text``, ``held_out_prosody``: 1.0 or 0.0) and
    the realised measurements of :func:`~prosody_vae.data.espeak.labels.measure_prosody` plus
    ``n_phones`` and ``phones_per_s``.

    Resumable and idempotent: an existing valid wav is measured again but not re-synthesised, and
    wavs are written atomically, so an interrupted build can simply be run again; the manifest and
    the final ``corpus.json`` are written at the end. A larger ``n_utterances`` on the same folder
    keeps the existing utterances and adds new ones. An utterance that fails (for example no voiced
    frame) is left out of the manifest with a warning and listed under ``failed`` in ``corpus.json``.

    Args:
        out_dir: output folder (created).
        n_utterances: number of utterances.
        seed: seed of the sentences and of the factor draws.
        multi_speaker: draw the voice from ``VOICES`` instead of always ``"en-us"``.
        num_workers: worker processes; 1 runs in this process.
        held_out_fraction: probability that an utterance speaks a held-out sentence.
        espeak: name or path of the espeak-ng binary.
        progress: show a tqdm progress bar.

    Raises:
        ValueError: a bad argument, or ``out_dir/corpus.json`` records other settings.
        EspeakError: espeak-ng is missing (the message says how to install it).
    """
    for name, value in (("n_utterances", n_utterances), ("num_workers", num_workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    out_dir = Path(out_dir)
    config = AudioConfig(sample_rate=ESPEAK_SAMPLE_RATE)
    # Arguments are validated before espeak-ng is first called, which checks that it is installed
    # (before anything is written).
    settings = corpus_settings(
        seed=seed, multi_speaker=multi_speaker, held_out_fraction=held_out_fraction, espeak_version=""
    )
    settings["espeak_version"] = espeak_version(espeak=espeak)
    voices = settings["voices"]
    description = out_dir / "corpus.json"
    check_settings(description, settings)
    wav_dir = out_dir / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    # Written before any wav, so that a later run with other settings is refused even after a crash.
    _write_json(description, {**settings, "complete": False})

    plans = plan_corpus(n_utterances, seed=seed, voices=voices, held_out_fraction=held_out_fraction)
    results: dict[str, tuple[dict[str, float], bool]] = {}
    failed: dict[str, str] = {}
    for utt_id, outcome in _run_all(plans, wav_dir, espeak, config, num_workers, progress):
        if isinstance(outcome, str):
            failed[utt_id] = outcome
            warnings.warn(f"espeak corpus: skipping {utt_id}: {outcome}", stacklevel=2)
        else:
            results[utt_id] = outcome

    utterances = [
        Utterance(
            id=plan.id,
            audio=f"wavs/{plan.id}.wav",
            text=plan.text,
            speaker=plan.voice,
            duration=results[plan.id][0]["duration_s"],
            labels={**plan.labels(), **results[plan.id][0]},
        )
        for plan in plans
        if plan.id in results
    ]
    manifest = out_dir / "manifest.jsonl"
    write_manifest(manifest, utterances)
    held_out = [
        u.text for u in utterances if u.labels["held_out_text"] == 1.0 or u.labels["held_out_prosody"] == 1.0
    ]
    _write_text(out_dir / "held_out_texts.txt", "".join(f"{text}\n" for text in dict.fromkeys(held_out)))
    counts = {
        "utterances": len(utterances),
        "synthesised_this_run": sum(synthesised for _, synthesised in results.values()),
        "held_out_text": sum(u.labels["held_out_text"] == 1.0 for u in utterances),
        "held_out_prosody": sum(u.labels["held_out_prosody"] == 1.0 for u in utterances),
        "train_pool": sum(
            u.labels["held_out_text"] == 0.0 == u.labels["held_out_prosody"] for u in utterances
        ),
        "hours": round(sum(u.duration or 0.0 for u in utterances) / 3600.0, 4),
        "per_speaker": {voice: sum(u.speaker == voice for u in utterances) for voice in voices},
    }
    final = {
        **settings,
        "complete": True,
        "n_utterances": n_utterances,
        "counts": counts,
        "failed": failed,
        "audio_config": asdict(config),
        "f0_method": F0_METHOD,
    }
    _write_json(description, final)
    return manifest
