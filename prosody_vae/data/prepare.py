"""Corpus preparation as one library call: read -> validate -> manifest -> features -> splits.

Output layout (``out``)::

    manifest.jsonl            validated utterances (absolute audio paths, durations filled in)
    validation.txt            summary and every rejected utterance with its reason
    features/                 <id>.pt feature cache (+ audio_config.json, f0_tracker.json)
    features_failed.tsv       utterances whose extraction failed, with reasons
    splits/{train,valid,test}.jsonl
    prepare.json              the input fingerprint (corpus, audio config, tokenizer, options)
    .done/<stage>             completion markers

Each stage is idempotent in the icefall/ESPnet way: a finished stage leaves a marker and is skipped
next time; rerunning a stage (``force``) removes the markers of the stages after it, because their
inputs may have changed. Feature extraction is itself resumable, so an interrupted features stage
just continues. Every file is written atomically (a temporary name, then a rename).

The manifest stage drops, and lists in ``validation.txt``, every utterance the training tokenizer
cannot read (``untokenisable text: ...``, e.g. a Cyrillic or CJK transcript), so that training never
meets one, and skips repeated ids (``duplicate id: ...``). ``prepare.json`` records what ``out`` was
prepared from: preparing the same input again does nothing, while different input (another corpus
listing, audio config, tokenizer, F0 tracker or split option) is refused before anything is touched,
unless ``force``, which then deletes the old manifest, features and splits and prepares from scratch.

Nearly all of the time goes into F0: Harvest runs at about 7x real time on one core, the rest of the
pipeline (reading, trimming, mel, energy, writing) at several hundred. ``f0_tracker`` chooses what the
cache holds (:data:`~prosody_vae.data.feature_cache.F0_TRACKERS`): the reference Harvest track (the
default), Harvest at a lower rate (about 1.7 times as fast), or no F0 for models without
``backbone.pitch`` or ``prosody.reference_pitch`` (docs/benchmarks.md, "Data preparation"). A corpus
in our manifest format that keeps its reference F0 tracks beside the manifest (``f0/``, as the
built-in corpus does: :mod:`prosody_vae.data.f0_store`) gives the ``"harvest"`` cache each track that
provably is the one Harvest would compute here, so that Harvest runs once per utterance, when the
corpus is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from prosody_vae._typed import build
from prosody_vae.atomic import write_text_atomic
from prosody_vae.audio import AudioConfig
from prosody_vae.data.f0_store import STORE_FOLDER
from prosody_vae.data.feature_cache import (
    F0_TRACKERS,
    ExtractionReport,
    F0Tracker,
    extract_features,
    feature_path,
)
from prosody_vae.data.manifest import Utterance, read_manifest, write_manifest
from prosody_vae.data.readers import CORPUS_READERS
from prosody_vae.data.splits import SPLITS, split_utterances
from prosody_vae.data.validate import ValidationReport, untokenisable, validate_utterances
from prosody_vae.text import build_tokenizer

__all__ = [
    "CORPORA",
    "STAGES",
    "PreparedCorpus",
    "PreparedElsewhereError",
    "prepare_corpus",
    "prepared_f0_tracker",
    "read_audio_config",
]

_FINGERPRINT_FILE = "prepare.json"
# prepare.json files written before the F0 tracker was an option: those versions extracted Harvest.
_UNRECORDED_F0_TRACKER = "harvest"


class PreparedElsewhereError(ValueError):
    """``out`` was prepared from different input; the message says what differs."""


STAGES = ("manifest", "features", "splits")
CORPORA = (*CORPUS_READERS, "manifest")


@dataclass
class PreparedCorpus:
    """Paths of a prepared corpus, plus the reports of the stages that ran in this call."""

    out: Path
    validation: ValidationReport | None = None
    extraction: ExtractionReport | None = None
    split_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def manifest(self) -> Path:
        return self.out / "manifest.jsonl"

    @property
    def features(self) -> Path:
        return self.out / "features"

    def split(self, name: str) -> Path:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.out / "splits" / f"{name}.jsonl"


def read_audio_config(path: str | Path) -> AudioConfig:
    """An :class:`AudioConfig` from a mapping of its fields (unknown keys are errors): JSON for a
    ``.json`` file (e.g. the ``audio_config.json`` that prepare writes), YAML otherwise; either may be a
    whole experiment config with an ``audio:`` section.

    JSON is read as JSON: YAML 1.1 reads JSON's ``1e-05`` (how ``json`` writes ``log_floor``) as a
    string. Values are then converted to the fields' types (:mod:`prosody_vae._typed`), so YAML's
    ``1e-5`` is a float too and a wrong value is a one-line error naming the file and the field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: cannot read the audio config ({' '.join(str(error).split())})") from None
    data = {} if data is None else data
    if isinstance(data, dict) and isinstance(data.get("audio"), dict):
        data = data["audio"]  # a full config file with an `audio:` section
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of AudioConfig fields")
    known = [f.name for f in dataclasses.fields(AudioConfig)]
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise ValueError(f"{path}: unknown AudioConfig field(s) {unknown}; known: {known}")
    try:
        return build(AudioConfig, data, "audio")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def _stored_f0_tracks(corpus: str, root: Path) -> Path | None:
    """The folder of stored reference F0 tracks of a corpus in our manifest format: ``f0/`` beside
    its manifest (where :func:`~prosody_vae.data.espeak.build_corpus` keeps them), when it exists.
    Each track is still checked against the audio and the config before it is used."""
    if corpus != "manifest":
        return None
    store = root.parent / STORE_FOLDER
    return store if store.is_dir() else None


def _read_corpus(corpus: str, root: Path, mic: str, problems: list[tuple[str, str]]) -> list[Utterance]:
    if corpus == "manifest":
        return read_manifest(root, problems=problems)  # repeated ids: skipped and reported
    if corpus == "vctk":
        return CORPUS_READERS["vctk"](root, mic, problems=problems)
    return CORPUS_READERS[corpus](root, problems=problems)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _input_record(
    utterances: list[Utterance] | None,
    problems: list,
    config: AudioConfig,
    tokenizer: dict | None,
    options: dict,
) -> dict:
    """What ``out`` is prepared from: the corpus listing as read (its digest; None when the corpus
    was not read), the audio config, the tokenizer and the options that change the results."""
    listing = None
    if utterances is not None:
        listing = _digest([dataclasses.asdict(utt) for utt in utterances] + [list(p) for p in problems])
    return {
        "corpus": listing,
        "audio": dataclasses.asdict(config),
        "tokenizer": tokenizer,
        "options": options,
    }


def prepared_f0_tracker(out: str | Path) -> str | None:
    """The F0 tracker ``out`` was prepared with (from its ``prepare.json``); None when it has none.

    A ``prepare.json`` from before the tracker was an option reads as ``"harvest"``. Lets a front end
    that picks the tracker by itself keep the one of a folder prepared earlier instead of refusing it.
    """
    path = Path(out).expanduser() / _FINGERPRINT_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    options = stored.get("options") if isinstance(stored, dict) else None
    if not isinstance(options, dict):
        return None
    return options.get("f0_tracker", _UNRECORDED_F0_TRACKER)


def _check_fingerprint(out: Path, record: dict, force: bool, log: Callable[[str], None]) -> None:
    """Compare ``record`` with ``out/prepare.json``: same input, go on; different input, refuse, or
    with ``force`` delete what was prepared from the old input; then store ``record``."""
    path = out / _FINGERPRINT_FILE
    stored = None
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            log(f"[prepare] {path}: unreadable; recording this input")
    if isinstance(stored, dict):
        if isinstance(stored.get("options"), dict):
            stored["options"].setdefault("f0_tracker", _UNRECORDED_F0_TRACKER)
        if record["corpus"] is None or stored.get("corpus") is None:  # one side unread: no comparison
            record = {**record, "corpus": record["corpus"] or stored.get("corpus")}
            stored = {**stored, "corpus": record["corpus"]}
        differs = [key for key in record if stored.get(key) != record[key]]
        if differs and not force:
            details = []
            for key in differs:
                old, new = stored.get(key), record[key]
                if isinstance(old, dict) and isinstance(new, dict):
                    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                    details.append(f"{key} ({', '.join(changed)})")
                else:
                    details.append(
                        "corpus (its listing of ids, audio paths and texts)" if key == "corpus" else key
                    )
            raise PreparedElsewhereError(
                f"{out}: already prepared from different input: {'; '.join(details)} differ; "
                "prepare into a new --out, or pass --force to delete its manifest, features and splits "
                "and prepare again"
            )
        if differs:
            for name in ("manifest.jsonl", "validation.txt", "features_failed.tsv", "audio_config.json"):
                (out / name).unlink(missing_ok=True)
            for folder in ("features", "splits", ".done"):
                shutil.rmtree(out / folder, ignore_errors=True)
            log(f"[prepare] {out}: input changed ({', '.join(differs)}); --force: deleted the old results")
    elif (out / ".done").is_dir() and any((out / ".done").iterdir()):
        log(f"[prepare] {out}: no {_FINGERPRINT_FILE} (prepared by an older version); recording this input")
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8", errors="replace") != text:
        write_text_atomic(path, text)


def prepare_corpus(
    corpus: str,
    root: str | Path,
    out: str | Path,
    *,
    config: AudioConfig | None = None,
    num_workers: int = 2,
    min_duration: float = 0.5,
    max_duration: float = 20.0,
    valid_fraction: float = 0.02,
    test_fraction: float = 0.02,
    seed: int = 0,
    group_by: Literal["id", "text", "speaker"] = "id",
    held_out_texts: Collection[str] = (),
    mic: str = "mic1",
    stages: Sequence[str] = STAGES,
    force: bool = False,
    tokenizer: Literal["phonemes", "characters"] | None = "phonemes",
    f0_tracker: F0Tracker = "harvest",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PreparedCorpus:
    """Prepare ``corpus`` found at ``root`` into ``out`` (see the module docstring for the layout).

    Args:
        corpus: one of ``CORPORA``; ``"manifest"`` takes an existing manifest file as ``root``.
        root: corpus folder (or manifest/filelist file).
        out: output folder.
        config: audio analysis config (default ``AudioConfig()``).
        num_workers: feature-extraction processes.
        min_duration, max_duration: validation duration bounds, seconds.
        valid_fraction, test_fraction, seed, group_by, held_out_texts: see ``split_utterances``.
        mic: VCTK microphone.
        stages: which of ``STAGES`` to run (in pipeline order).
        force: rerun stages that are already marked done; when ``out`` was prepared from different
            input, first delete its manifest, features and splits (without ``force`` that is a
            :class:`PreparedElsewhereError`).
        tokenizer: the ``text.tokenizer`` of the experiments that will train on the data; utterances
            whose text it cannot read are rejected in the manifest stage. None skips that check.
        f0_tracker: F0 of the feature cache: ``"harvest"`` (the reference track of labels and
            metrics), ``"harvest-decimated"`` (about 1.7 times as fast, close to it) or ``"none"`` (no F0:
            fast, but no pitch model can train on it). Part of the input record: changing it needs a
            new ``out`` or ``force``. With ``"harvest"`` and ``corpus="manifest"``, the stored tracks
            in ``f0/`` beside the manifest are reused where they match (module docstring); the cache
            is the same either way.
        progress: progress bar during extraction.
        log: where stage messages go.
    """
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}")
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {STAGES}")
    if f0_tracker not in F0_TRACKERS:
        raise ValueError(f"f0_tracker must be one of {F0_TRACKERS}, got {f0_tracker!r}")
    config = AudioConfig() if config is None else config
    root, out = Path(root).expanduser(), Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(20, "exists and is not a folder", str(out))
    text_reader = build_tokenizer(tokenizer) if tokenizer is not None else None
    problems: list[tuple[str, str]] = []
    # The corpus is read only when the manifest stage runs: the later stages read out's manifest.
    utterances = _read_corpus(corpus, root, mic, problems) if "manifest" in stages else None
    options = {
        "corpus": corpus,
        "min_duration": min_duration,
        "max_duration": max_duration,
        "valid_fraction": valid_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "group_by": group_by,
        "held_out_texts": _digest(sorted(held_out_texts)),
        "f0_tracker": f0_tracker,
    }
    record = _input_record(
        utterances, problems, config, None if text_reader is None else text_reader.config(), options
    )
    _check_fingerprint(out, record, force, log)
    result = PreparedCorpus(out=out)
    markers = out / ".done"
    markers.mkdir(parents=True, exist_ok=True)

    for stage in (s for s in STAGES if s in stages):
        marker = markers / stage
        if marker.exists() and not force:
            log(f"[{stage}] already done ({marker}); skipping")
            continue
        for later in STAGES[STAGES.index(stage) + 1 :]:
            (markers / later).unlink(missing_ok=True)
        if stage != "manifest" and not result.manifest.is_file():
            raise ValueError(f"{result.manifest}: not found; run the manifest stage first")
        if stage == "manifest":
            report = validate_utterances(
                utterances, config, min_duration=min_duration, max_duration=max_duration
            )
            if text_reader is not None:
                dropped = untokenisable(report.kept, text_reader)
                bad = {utt_id for utt_id, _ in dropped}
                report.kept = [utt for utt in report.kept if utt.id not in bad]
                report.rejected += dropped
            report.rejected[:0] = problems  # reader problems first, then validation rejections
            write_manifest(result.manifest, report.kept)
            details = "".join(f"{utt_id}\t{reason}\n" for utt_id, reason in report.rejected)
            write_text_atomic(out / "validation.txt", report.summary() + "\n\n" + details)
            write_text_atomic(
                out / "audio_config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n"
            )
            result.validation = report
            log(f"[manifest] {result.manifest}\n{report.summary()}")
        elif stage == "features":
            utterances = read_manifest(result.manifest)
            store = _stored_f0_tracks(corpus, root)
            report = extract_features(
                utterances,
                result.features,
                config,
                num_workers=num_workers,
                progress=progress,
                f0_tracker=f0_tracker,
                f0_store=store,
            )
            failed = "".join(f"{utt_id}\t{reason}\n" for utt_id, reason in report.failed)
            write_text_atomic(out / "features_failed.tsv", failed)
            result.extraction = report
            log(f"[features] {result.features}\n{report.summary()}")
            if report.reused_f0:
                log(f"[features] stored F0 tracks: {store}")
        else:
            # Only utterances with features can be trained on; failed extractions are left out here.
            usable = [
                utt
                for utt in read_manifest(result.manifest)
                if feature_path(result.features, utt.id).is_file()
            ]
            splits = split_utterances(
                usable, valid_fraction, test_fraction, seed, group_by=group_by, held_out_texts=held_out_texts
            )
            for name, members in splits.items():
                write_manifest(result.split(name), members)
            result.split_sizes = {name: len(members) for name, members in splits.items()}
            log(f"[splits] {out / 'splits'}: " + ", ".join(f"{k} {v}" for k, v in result.split_sizes.items()))
        marker.touch()
    return result
