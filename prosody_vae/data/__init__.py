"""Data pipeline: manifests, corpus readers, validation, feature cache, splits, datasets, batching."""

from prosody_vae.data.dataset import Batch, ProsodyDataset, collate
from prosody_vae.data.feature_cache import ExtractionReport, extract_features, feature_path, load_features
from prosody_vae.data.manifest import Utterance, read_manifest, write_manifest
from prosody_vae.data.prepare import PreparedCorpus, prepare_corpus, read_audio_config
from prosody_vae.data.readers import read_blizzard2013, read_filelist, read_kaldi, read_ljspeech, read_vctk
from prosody_vae.data.sampler import LengthBucketSampler
from prosody_vae.data.splits import split_utterances
from prosody_vae.data.validate import ValidationReport, validate_utterances

__all__ = [
    "Batch",
    "ExtractionReport",
    "LengthBucketSampler",
    "PreparedCorpus",
    "ProsodyDataset",
    "Utterance",
    "ValidationReport",
    "collate",
    "extract_features",
    "feature_path",
    "load_features",
    "prepare_corpus",
    "read_audio_config",
    "read_blizzard2013",
    "read_filelist",
    "read_kaldi",
    "read_ljspeech",
    "read_manifest",
    "read_vctk",
    "split_utterances",
    "validate_utterances",
    "write_manifest",
]
