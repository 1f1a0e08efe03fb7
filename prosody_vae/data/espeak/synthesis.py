"""espeak-ng synthesis with known prosody factors, and the built-in corpus built from it.

The per-utterance factors (drawn in :mod:`prosody_vae.data.espeak.plan`) are passed to espeak-ng 1.51
(Debian package ``espeak-ng``):

* ``pitch``: the voice's pitch base, ``-p 0..99`` (espeak-ng's default is 50);
* ``pitch_range``: the intonation range. With espeak-ng's own tune (the original corpus) it is SSML
  ``<prosody range="N">`` with ``N`` in ``0..100`` (read with ``-m``; 50 is the default, 0 nearly
  monotone). espeak-ng has no command-line flag for it; a plain number sets the absolute range
  (``x-low``, ``medium``, ``high``, ``x-high`` measured the same as 10, 50, 70, 90). A wider range
  also raises the mean F0 somewhat: the contour widens mostly upwards from the base. With the
  stylised contour it is the height of a per-word pitch contour instead
  (:mod:`prosody_vae.data.espeak.intonation`);
* ``contour`` (stylised contour only): where that contour peaks, 0 (first word) to 100 (last word);
* ``rate``: speaking rate, ``-s`` in approximate words per minute;
* the voice: ``-v language[+variant]``, e.g. ``en-gb-scotland+m2``.

The realised prosody is then measured from the audio and stored beside the drawn factors, so that
users and tests can check that the labels are real (see ``docs/corpus.md``). The reference F0 track
the labels are measured on is kept too (``f0/<id>.npz``, :mod:`prosody_vae.data.f0_store`): it is
the feature cache's ``harvest`` F0 of the same audio, which ``prepare`` then takes instead of
running Harvest, the dominant cost of both steps, a second time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import unicodedata
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
from tqdm import tqdm

from prosody_vae.atomic import remove_stale_temporaries
from prosody_vae.audio import AudioConfig, harvest_f0, load_audio, num_frames
from prosody_vae.data.espeak.intonation import Intonation, contour_ssml, tune_ssml
from prosody_vae.data.espeak.labels import F0_METHOD, track_labels
from prosody_vae.data.espeak.plan import UtterancePlan, check_settings, corpus_settings, plan_corpus
from prosody_vae.data.f0_store import STORE_FOLDER, read_track, reference_computation, track_path, write_track
from prosody_vae.data.manifest import Utterance, write_manifest
from prosody_vae.errors import ProsodyVAEError

__all__ = [
    "ESPEAK_SAMPLE_RATE",
    "EspeakError",
    "build_corpus",
    "check_voices",
    "espeak_version",
    "phonemes",
    "synthesize",
]

# espeak-ng's native output rate; the corpus keeps it (it is also AudioConfig's default).
ESPEAK_SAMPLE_RATE = 22050
_INSTALL_HINT = "install it with `apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng`"


class EspeakError(ProsodyVAEError, RuntimeError):
    """espeak-ng is missing or failed; the message names the binary or the text and says why.

    A :class:`~prosody_vae.errors.ProsodyVAEError`, so that the command line reports it as one line.
    """


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


def check_voices(voices: list[str], *, espeak: str = "espeak-ng") -> None:
    """Check that espeak-ng knows every ``language[+variant]`` voice.

    espeak-ng refuses an unknown language but silently ignores an unknown variant (``en-us+m9``
    speaks as ``en-us``), so variants are looked up in its list of variants (``--voices=variant``).

    Raises:
        ValueError: the first voice espeak-ng does not know, by name.
        EspeakError: espeak-ng is missing.
    """
    listing = _run(["--voices=variant"], text="", espeak=espeak)
    variants = {token.removeprefix("!v/") for token in listing.split() if token.startswith("!v/")}
    for voice in voices:
        language, _, variant = voice.partition("+")
        if variant and variant not in variants:
            raise ValueError(
                f"voice {voice!r}: espeak-ng has no variant {variant!r} (see espeak-ng --voices=variant)"
            )
        try:
            _run(["-q", "--stdin", "-v", language], text="a", espeak=espeak)
        except EspeakError as error:
            raise ValueError(f"voice {voice!r}: espeak-ng has no voice {language!r} ({error})") from error


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
    contour: int | None = None,
    question_rise: int = 0,
    texts_per_setting: int = 1,
) -> Path:
    """Speak ``text`` with espeak-ng into a 22050 Hz mono 16-bit WAV at ``out_path``.

    Args:
        text: plain text (SSML special characters are escaped here).
        pitch: pitch base, ``-p``, 0..99.
        pitch_range: intonation range, 0..100: the range of espeak-ng's own tune (SSML
            ``<prosody range>``) or, with ``contour``, the height of the stylised contour.
        rate: speaking rate in words per minute, ``-s``, 80..450 (espeak-ng's own limits).
        out_path: the WAV to write; written atomically (temporary file + ``os.replace``).
        voice: espeak-ng voice, optionally with a variant, e.g. ``"en-us+f3"``.
        amplitude: ``-a``, 0..200; it changes loudness only.
        espeak: name or path of the espeak-ng binary.
        contour: 0..100, the peak position of the stylised contour
            (:func:`~prosody_vae.data.espeak.intonation.contour_ssml`); ``None`` speaks with
            espeak-ng's own tune (:func:`~prosody_vae.data.espeak.intonation.tune_ssml`), as the
            original corpus does.
        question_rise: espeak-ng pitch units added to the last word when ``text`` is a question
            (:mod:`~prosody_vae.data.espeak.intonation`); 0 leaves the intonation as it was.

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
    if contour is None:
        ssml = tune_ssml(text, pitch_range=pitch_range, question_rise=question_rise)
    else:
        contour = _check_int("contour", contour, 0, 100)
        ssml = contour_ssml(text, pitch_range=pitch_range, contour=contour, question_rise=question_rise)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
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


DRAWN_SETTINGS = ("pitch", "pitch_range", "rate")  # the labels every built-in corpus utterance was drawn with


def corpus_question_rise(recording: str | Path) -> int:
    """The ``question_rise`` of the built corpus that ``recording`` (``<corpus>/wavs/<id>.wav``)
    belongs to, from its ``corpus.json``; 0 when there is none."""
    description = Path(recording).parent.parent / "corpus.json"
    if not description.is_file():
        return 0
    return int(json.loads(description.read_text()).get("question_rise", 0))


def synthesize_with_settings(
    text: str,
    labels: Mapping[str, float],
    *,
    voice: str,
    out_path: str | Path,
    question_rise: int = 0,
    espeak: str = "espeak-ng",
) -> Path | None:
    """:func:`synthesize` ``text`` with an utterance's drawn settings (its labels ``pitch``,
    ``pitch_range``, ``rate`` and, for the stylised contour, ``contour``) in ``voice``: that
    utterance's prosody carried onto another sentence or voice exactly, as far as espeak-ng realises
    it. None when the labels lack the drawn settings (not a built-in corpus)."""
    if not all(key in labels for key in DRAWN_SETTINGS):
        return None
    return synthesize(
        text,
        pitch=int(labels["pitch"]),
        pitch_range=int(labels["pitch_range"]),
        rate=int(labels["rate"]),
        voice=voice,
        contour=int(labels["contour"]) if "contour" in labels else None,
        question_rise=question_rise,
        out_path=out_path,
        espeak=espeak,
    )


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


class _Rendered(NamedTuple):
    labels: dict[str, float]
    synthesised: bool  # the wav was written in this call
    tracked: bool  # Harvest ran in this call (else the stored track was reused)


def _measure(
    wav_path: Path, track: Path, config: AudioConfig, intonation: bool
) -> tuple[dict[str, float], bool]:
    """Labels of one wav from its reference F0 track, and whether Harvest ran for it.

    The track is the stored one when it provably belongs to this wav and config
    (:func:`~prosody_vae.data.f0_store.read_track`): a rebuild of a built folder then re-measures
    without tracking. Otherwise Harvest runs (:func:`~prosody_vae.audio.harvest_f0` at the analysis
    rate: :func:`~prosody_vae.audio.f0_energy`'s F0 and the feature cache's ``harvest`` track), and
    the track is stored once the labels are measured.
    """
    wav = load_audio(wav_path, config)  # trimmed and peak-normalised, as the feature cache reads it
    f0 = read_track(track, audio=wav_path, config=config, frames=num_frames(wav.shape[0], config))
    tracked = f0 is None
    if f0 is None:
        f0 = harvest_f0(wav, config)
    labels = track_labels(
        f0, duration_s=wav.shape[0] / config.sample_rate, intonation=intonation, source=str(wav_path)
    )
    if tracked:
        write_track(track, f0, audio=wav_path, config=config)
    return labels, tracked


def _render(
    plan: UtterancePlan, wav_path: Path, track: Path, espeak: str, config: AudioConfig
) -> _Rendered | str:
    """Synthesise (unless a valid wav exists) and measure one utterance; runs in a worker process.

    Returns the measured labels with what was done, or the error message of a per-utterance failure.
    Failures come back as text rather than as exceptions because not every exception class survives
    the pickling between processes.
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
                contour=plan.contour,
                question_rise=plan.question_rise,
            )
        # The stylised contour's corpora also get the intonation labels; the original keeps its own.
        measured, tracked = _measure(wav_path, track, config, intonation=plan.contour is not None)
        n_phones = len(phonemes(plan.text, voice=plan.voice, espeak=espeak))
    except (EspeakError, ValueError) as error:  # AudioError is a ValueError
        return f"{type(error).__name__}: {error}"
    measured.update(n_phones=float(n_phones), phones_per_s=n_phones / measured["duration_s"])
    return _Rendered(measured, synthesised, tracked)


def _run_all(
    plans: list[UtterancePlan],
    out_dir: Path,
    espeak: str,
    config: AudioConfig,
    num_workers: int,
    progress: bool | None,
) -> Iterator[tuple[str, _Rendered | str]]:
    """Yield ``(id, result of _render)`` per plan, in completion order, with a progress bar."""
    wavs, tracks = out_dir / "wavs", out_dir / STORE_FOLDER
    jobs = [(plan, wavs / f"{plan.id}.wav", track_path(tracks, plan.id), espeak, config) for plan in plans]
    disable = None if progress is None else not progress  # None: tqdm shows it on a terminal only
    with tqdm(total=len(plans), desc="espeak corpus", unit="utt", disable=disable) as bar:
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
    progress: bool | None = True,
    voices: list[str] | tuple[str, ...] | None = None,
    held_out_voices: list[str] | tuple[str, ...] = (),
    intonation: Intonation = "tune",
    question_rise: int = 0,
    texts_per_setting: int = 1,
) -> Path:
    """Synthesise the built-in corpus into ``out_dir`` and return the path of its manifest.

    Writes ``out_dir/wavs/<id>.wav`` (22050 Hz), ``out_dir/manifest.jsonl`` (one
    :class:`~prosody_vae.data.manifest.Utterance` per line; speaker = espeak-ng voice; duration in
    seconds after silence trimming), ``out_dir/corpus.json`` (settings, espeak-ng version, counts),
    ``out_dir/f0/<id>.npz`` (the reference F0 track each utterance's labels were measured on, with
    the record that lets ``prepare`` reuse it: :mod:`prosody_vae.data.f0_store`) and
    ``out_dir/held_out_texts.txt``: the text of every held-out utterance, one per line (held-out
    sentences, the held-out prosody corner and every utterance of a held-out voice). Training texts
    are distinct, so this file names exactly the held-out utterances; give it to
    ``prepare_corpus(held_out_texts=...)`` (``--held-out-texts``) to put them all in the test split,
    never in train or valid.
    Each utterance's ``labels`` hold the drawn factors (``pitch``, ``pitch_range``, ``rate``,
    ``voice_index``; ``contour`` with the stylised contour), the held-out flags (``held_out_text``,
    ``held_out_prosody``; ``held_out_voice`` when held-out voices are named: 1.0 or 0.0) and the
    realised measurements of :func:`~prosody_vae.data.espeak.labels.measure_prosody` (with the
    stylised contour also ``f0_spread_st`` and ``f0_peak_position``) plus ``n_phones`` and
    ``phones_per_s``.

    Resumable and idempotent: an existing valid wav is measured again but not re-synthesised, and
    from its stored F0 track when that matches the wav (so a rerun costs little; a folder built
    before the tracks were kept gets them on its next run); wavs and tracks are written atomically,
    so an interrupted build can simply be run again; the manifest and the final ``corpus.json`` are
    written at the end. A larger ``n_utterances`` on the same folder
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
        progress: show a tqdm progress bar; None shows it only when stderr is a terminal.
        voices: the training voices (``language[+variant]``), instead of ``multi_speaker``'s.
        held_out_voices: voices kept out of training entirely (cross-voice evaluation); each
            utterance draws its voice uniformly from ``voices`` and these.
        intonation: ``"tune"`` (espeak-ng's own, the original corpus) or ``"contour"`` (the
            stylised contour with a peak-position factor), see
            :mod:`prosody_vae.data.espeak.intonation`.
        question_rise: espeak-ng pitch units added to the last word of every question (0..40; 0:
            espeak-ng's question tune alone, as the original corpus), see
            :mod:`prosody_vae.data.espeak.intonation`.
        texts_per_setting: how many different sentences speak each draw of voice and factors (1:
            every utterance its own draw); groups are labelled ``setting_group``, see
            :mod:`prosody_vae.data.espeak.plan`.

    Raises:
        ValueError: a bad argument, a voice espeak-ng does not know, or ``out_dir/corpus.json``
            records other settings.
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
        seed=seed,
        multi_speaker=multi_speaker,
        held_out_fraction=held_out_fraction,
        espeak_version="",
        voices=voices,
        held_out_voices=held_out_voices,
        intonation=intonation,
        question_rise=question_rise,
        texts_per_setting=texts_per_setting,
    )
    settings["espeak_version"] = espeak_version(espeak=espeak)
    all_voices = settings["voices"]  # training voices, then held-out voices
    held_out_voices = settings.get("held_out_voices", [])
    check_voices(all_voices, espeak=espeak)
    description = out_dir / "corpus.json"
    check_settings(description, settings)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    (out_dir / STORE_FOLDER).mkdir(exist_ok=True)
    remove_stale_temporaries(out_dir / STORE_FOLDER)  # tracks a killed run was writing
    # Written before any wav, so that a later run with other settings is refused even after a crash.
    _write_json(description, {**settings, "complete": False})

    plans = plan_corpus(
        n_utterances,
        seed=seed,
        voices=[voice for voice in all_voices if voice not in held_out_voices],
        held_out_fraction=held_out_fraction,
        held_out_voices=held_out_voices,
        intonation=intonation,
        question_rise=question_rise,
        texts_per_setting=texts_per_setting,
    )
    results: dict[str, _Rendered] = {}
    failed: dict[str, str] = {}
    for utt_id, outcome in _run_all(plans, out_dir, espeak, config, num_workers, progress):
        if isinstance(outcome, str):
            failed[utt_id] = outcome
            warnings.warn(f"espeak corpus: skipping {utt_id}: {outcome}", stacklevel=2)
        else:
            results[utt_id] = outcome

    built = [plan for plan in plans if plan.id in results]
    utterances = [
        Utterance(
            id=plan.id,
            audio=f"wavs/{plan.id}.wav",
            text=plan.text,
            speaker=plan.voice,
            duration=results[plan.id].labels["duration_s"],
            labels={**plan.labels(), **results[plan.id].labels},
        )
        for plan in built
    ]
    manifest = out_dir / "manifest.jsonl"
    write_manifest(manifest, utterances)
    held_out = [plan.text for plan in built if plan.held_out]
    _write_text(out_dir / "held_out_texts.txt", "".join(f"{text}\n" for text in dict.fromkeys(held_out)))
    counts = {
        "utterances": len(utterances),
        "synthesised_this_run": sum(result.synthesised for result in results.values()),
        "f0_tracked_this_run": sum(result.tracked for result in results.values()),
        "held_out_text": sum(plan.held_out_text for plan in built),
        "held_out_prosody": sum(plan.held_out_prosody for plan in built),
        **({"held_out_voice": sum(bool(plan.held_out_voice) for plan in built)} if held_out_voices else {}),
        "train_pool": sum(not plan.held_out for plan in built),
        "hours": round(sum(u.duration or 0.0 for u in utterances) / 3600.0, 4),
        "per_speaker": {voice: sum(u.speaker == voice for u in utterances) for voice in all_voices},
    }
    final = {
        **settings,
        "complete": True,
        "n_utterances": n_utterances,
        "counts": counts,
        "failed": failed,
        "audio_config": asdict(config),
        "f0_method": F0_METHOD,
        # the stored tracks: their folder and the computation each track file records (f0_store)
        "f0_tracks": {"folder": STORE_FOLDER, **reference_computation(config)},
    }
    _write_json(description, final)
    return manifest
