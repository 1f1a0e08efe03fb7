"""Corpus preparation as one library call: read -> validate -> manifest -> features -> splits.

Output layout (``out``)::

    manifest.jsonl            validated utterances (absolute audio paths, durations filled in)
    validation.txt            summary and every rejected utterance with its reason
    features/                 <id>.pt feature cache (+ audio_config.json)
    features_failed.tsv       utterances whose extraction failed, with reasons
    splits/{train,valid,test}.jsonl
    .done/<stage>             completion markers

Each stage is idempotent in the icefall/ESPnet way: a finished stage leaves a marker and is skipped
next time; rerunning a stage (``force``) removes the markers of the stages after it, because their
inputs may have changed. Feature extraction is itself resumable, so an interrupted features stage
just continues.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from prosody_vae.audio import AudioConfig
from prosody_vae.data.feature_cache import ExtractionReport, extract_features, feature_path
from prosody_vae.data.manifest import Utterance, read_manifest, write_manifest
from prosody_vae.data.readers import CORPUS_READERS
from prosody_vae.data.splits import SPLITS, split_utterances
from prosody_vae.data.validate import ValidationReport, validate_utterances

__all__ = ["CORPORA", "STAGES", "PreparedCorpus", "prepare_corpus", "read_audio_config"]

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
    """An :class:`AudioConfig` from a YAML/JSON mapping of its fields (unknown keys are errors)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of AudioConfig fields")
    data = data.get("audio", data)  # accept a full config file with an `audio:` section
    known = {f.name for f in dataclasses.fields(AudioConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown AudioConfig field(s) {unknown}")
    try:
        return AudioConfig(**data)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error


def _read_corpus(corpus: str, root: Path, mic: str, problems: list[tuple[str, str]]) -> list[Utterance]:
    if corpus == "manifest":
        return read_manifest(root)
    if corpus == "vctk":
        return CORPUS_READERS["vctk"](root, mic, problems=problems)
    return CORPUS_READERS[corpus](root, problems=problems)


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
        force: rerun stages that are already marked done.
        progress: progress bar during extraction.
        log: where stage messages go.
    """
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}, got {corpus!r}")
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {STAGES}")
    config = AudioConfig() if config is None else config
    root, out = Path(root).expanduser(), Path(out).expanduser()
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
            problems: list[tuple[str, str]] = []
            utterances = _read_corpus(corpus, root, mic, problems)
            report = validate_utterances(
                utterances, config, min_duration=min_duration, max_duration=max_duration
            )
            report.rejected[:0] = problems  # reader problems first, then validation rejections
            write_manifest(result.manifest, report.kept)
            details = "".join(f"{utt_id}\t{reason}\n" for utt_id, reason in report.rejected)
            (out / "validation.txt").write_text(report.summary() + "\n\n" + details, encoding="utf-8")
            (out / "audio_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
            result.validation = report
            log(f"[manifest] {result.manifest}\n{report.summary()}")
        elif stage == "features":
            utterances = read_manifest(result.manifest)
            report = extract_features(
                utterances, result.features, config, num_workers=num_workers, progress=progress
            )
            failed = "".join(f"{utt_id}\t{reason}\n" for utt_id, reason in report.failed)
            (out / "features_failed.tsv").write_text(failed, encoding="utf-8")
            result.extraction = report
            log(f"[features] {result.features}\n{report.summary()}")
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
