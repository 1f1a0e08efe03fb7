"""The one-command demo: prosody transfer, prior samples and interpolation with the shipped model.

Reference recordings are made on the spot with espeak-ng, one per prosody style (low/high pitch,
slow/fast, narrow/wide intonation range), speaking held-out sentences the model never saw. Each
reference's prosody is transferred to new held-out sentences; the outputs are measured the way the
corpus labels were measured (F0 level, F0 spread, phones per second) and set against the reference,
so the report says in numbers, as well as in sound and pictures, whether the prosody carried over.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from prosody_vae.atomic import write_text_atomic
from prosody_vae.audio.io import write_wav
from prosody_vae.audio.vocoders import load_vocoder, vocode
from prosody_vae.data.espeak import held_out_sentences, measure_prosody, phonemes, synthesize
from prosody_vae.data.espeak.labels import f0_contour
from prosody_vae.demo.styles import STYLES, ReferenceStyle
from prosody_vae.evaluation.tempo import tempo
from prosody_vae.inference.packed import builtin_model_path
from prosody_vae.inference.synthesizer import Synthesis, Synthesizer, slerp

__all__ = ["STYLES", "DemoResult", "ReferenceStyle", "run_demo"]


# (measurement key, table header): what transfer should carry from reference to output
# tempo: the pace relative to the sentence's own neutral duration (prosody_vae.evaluation.tempo);
# phones per second also counts how long the sentence's sounds are, which differs between the texts
QUANTITIES = (
    ("f0_mean_hz", "F0 mean (Hz)"),
    ("f0_range_st", "F0 range (st)"),
    ("phones_per_s", "phones/s"),
    ("tempo", "tempo"),
)


@dataclass
class Rendition:
    """One written utterance and what was measured on it (None when it could not be measured)."""

    kind: str
    name: str
    text: str
    wav: str
    measured: dict[str, float] | None
    figures: dict[str, str] = field(default_factory=dict)
    reference: str | None = None  # the reference's wav, for transfers
    source: str | None = None  # the reference's style name, for transfers
    stopped: bool = True


@dataclass
class DemoResult:
    out_dir: str
    model: str
    provenance: dict
    references: list[Rendition]
    transfers: list[Rendition]
    samples: list[Rendition]
    interpolation: list[Rendition]
    correlations: dict[str, float | None]  # over the transfers from references in DEFAULT_VOICE
    vocoder: str = "Griffin-Lim (32 iterations)"  # what turned every output mel into audio
    voice_means: dict[str, float] = field(default_factory=dict)  # Hz, of voices the model does not know


def _measure(wav: np.ndarray | str | Path, text: str, synth: Synthesizer) -> dict[str, float] | None:
    try:
        measured = measure_prosody(wav, config=synth.audio)
    except ValueError:  # an output with too few voiced frames: reported as not measurable
        return None
    measured["phones_per_s"] = len(phonemes(text)) / max(measured["duration_s"], 1e-3)
    measured["tempo"] = tempo(text, measured["duration_s"], config=synth.audio)
    return measured


def _pearson(pairs: list[tuple[float, float]]) -> float | None:
    if len(pairs) < 3:
        return None
    x, y = np.asarray(pairs, dtype=float).T
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _vocoder_name(synth: Synthesizer, gl_iters: int) -> str:
    if synth.default_vocoder == "world":
        return "WORLD (the model's predicted F0 and voicing, spectral envelope from its mel)"
    return f"Griffin-Lim ({gl_iters} iterations)"


class _Writer:
    """Vocodes, writes and measures renditions, and draws their figures."""

    def __init__(self, synth: Synthesizer, out_dir: Path, gl_iters: int, figures: bool) -> None:
        self.synth = synth
        self.out_dir = out_dir
        self.vocoder = load_vocoder(None, synth.audio, n_iter=gl_iters, default=synth.default_vocoder)
        self.figures = figures

    def write(
        self,
        kind: str,
        name: str,
        text: str,
        result: Synthesis,
        reference: Path | None = None,
        source: str | None = None,
    ) -> tuple[Rendition, np.ndarray]:
        path = self.out_dir / kind / f"{name}.wav"
        wav = vocode(self.vocoder, result.mel, result.f0).float().cpu().numpy()
        write_wav(path, wav, self.synth.audio.sample_rate)
        rendition = Rendition(
            kind=kind,
            name=name,
            text=text,
            wav=str(path.relative_to(self.out_dir)),
            measured=_measure(wav, text, self.synth),
            reference=str(reference.relative_to(self.out_dir)) if reference is not None else None,
            source=source,
            stopped=result.stopped,
        )
        if self.figures and reference is not None:
            rendition.figures = self._transfer_figures(path, wav, result, reference, name)
        return rendition, wav

    def _transfer_figures(self, path: Path, wav: np.ndarray, result: Synthesis, reference: Path, name: str):
        from prosody_vae.plots import plot_alignment, plot_f0_contours, plot_mels, save_figure

        audio = self.synth.audio
        figures = {
            "mels": plot_mels(
                [self.synth.reference_mel(reference), result.mel],
                ["reference", "output"],
                sample_rate=audio.sample_rate,
                hop_length=audio.hop_length,
            ),
            "f0": plot_f0_contours(
                [f0_contour(reference, config=audio), f0_contour(wav, config=audio)],
                ["reference", "output"],
                sample_rate=audio.sample_rate,
                hop_length=audio.hop_length,
                title=name,
            ),
            "alignment": plot_alignment(result.alignment, title=f"{name}: attention"),
        }
        written = {}
        for key, figure in figures.items():
            figure_path = path.with_name(f"{path.stem}_{key}.png")
            save_figure(figure, figure_path)
            written[key] = str(figure_path.relative_to(self.out_dir))
        return written

    def contours(self, renditions: list[Rendition], wavs: list[np.ndarray], name: str, title: str) -> str:
        from prosody_vae.plots import plot_f0_contours, save_figure

        audio = self.synth.audio
        figure = plot_f0_contours(
            [f0_contour(w, config=audio) for w in wavs],
            [r.name for r in renditions],
            sample_rate=audio.sample_rate,
            hop_length=audio.hop_length,
            title=title,
        )
        path = self.out_dir / f"{name}_f0.png"
        save_figure(figure, path)
        return str(path.relative_to(self.out_dir))


def run_demo(
    out_dir: str | Path = "demo_out",
    *,
    model: str | Path | None = None,
    styles: tuple[ReferenceStyle, ...] | list[ReferenceStyle] = STYLES,
    n_targets: int = 2,
    n_samples: int = 3,
    interpolation_steps: int = 5,
    gl_iters: int = 32,
    figures: bool = True,
    seed: int = 0,
    progress: bool | None = True,
) -> DemoResult:
    """Run the demo into ``out_dir``: wavs, figures, ``report.md``, ``report.html``, ``summary.json``.

    Each reference recording is written with its transcript beside it (``references/<style>.wav`` and
    ``references/<style>.txt``), the layout the synthesis commands read reference sets in, so that
    ``prosody-vae traverse --activity-from out_dir/references`` and ``prosody-vae embed`` reuse them.

    Args:
        model: a packed model or training checkpoint; default the shipped built-in-corpus model.
        styles: reference styles to record and transfer (see :data:`STYLES`).
        n_targets: held-out sentences each reference's prosody is transferred to.
        n_samples: prior samples of the first target sentence (0 skips them).
        interpolation_steps: points from the first style's embedding to the second's, ends included
            (spherical interpolation; 0 skips it, and it needs two styles).
        gl_iters: Griffin-Lim iterations.
        figures: draw per-transfer figures (mels, F0, alignment) and F0 overlays.
        seed: seeds the decoder's prenet dropout, which stays on at inference as in Tacotron 2.
        progress: a progress bar on stderr: True always, False never, None when stderr is a terminal.
    """
    from prosody_vae.demo.report import write_report

    if not styles:
        raise ValueError("at least one reference style is needed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = Path(model) if model is not None else builtin_model_path()
    synth = Synthesizer.from_checkpoint(model_path)
    torch.manual_seed(seed)
    provenance = _provenance(model_path)
    sentences = held_out_sentences()
    reference_texts = sentences[: len(styles)]
    targets = list(sentences[len(styles) : len(styles) + n_targets])
    writer = _Writer(synth, out_dir, gl_iters, figures)

    n_tasks = len(styles) * (1 + n_targets) + n_samples + (interpolation_steps if len(styles) > 1 else 0)
    bar = tqdm(total=n_tasks, desc="demo", unit="utt", disable=None if progress is None else not progress)

    references, embeddings, voices = [], [], []
    voice_means: dict[str, float] = {}
    for style, text in zip(styles, reference_texts, strict=False):
        path = out_dir / "references" / f"{style.name}.wav"
        synthesize(
            text,
            pitch=style.pitch,
            pitch_range=style.pitch_range,
            rate=style.rate,
            voice=style.voice,
            out_path=path,
        )
        write_text_atomic(path.with_suffix(".txt"), text + "\n")
        references.append(
            Rendition(
                "reference", style.name, text, str(path.relative_to(out_dir)), _measure(path, text, synth)
            )
        )
        voices.append(_reference_voice(synth, style.voice, out_dir, sentences, voice_means))
        bar.update()

    transfers = []
    for style, reference, (speaker, voice_f0) in zip(styles, references, voices, strict=True):
        z = None  # the reference's posterior mean, which every transfer of it speaks with
        for j, target in enumerate(targets):
            # as the transfer command does: the posterior mean, and the default timing (the
            # reference's measured pace, for a model with a length model)
            result = synth.transfer(
                target,
                out_dir / reference.wav,
                reference_text=reference.text,
                reference_speaker=speaker,
                reference_voice_f0=voice_f0,
            )
            rendition, _ = writer.write(
                "transfer", f"{style.name}_to_{j}", target, result, out_dir / reference.wav, style.name
            )
            transfers.append(rendition)
            z = result.z
            bar.update()
        if z is None:  # no target sentences: the embedding alone, for the interpolation
            z = synth.embed(
                out_dir / reference.wav, reference_text=reference.text, speaker=speaker, voice_f0=voice_f0
            ).mean[0]
        embeddings.append(z)

    samples: list[Rendition] = []
    if n_samples and targets:
        sample_wavs = []
        for i, result in enumerate(synth.sample(targets[0], n_samples)):
            rendition, wav = writer.write("samples", f"sample_{i}", targets[0], result)
            samples.append(rendition)
            sample_wavs.append(wav)
            bar.update()
        if figures:
            samples[0].figures["f0"] = writer.contours(samples, sample_wavs, "samples", "prior samples")

    interpolation: list[Rendition] = []
    if interpolation_steps and len(styles) > 1:
        text = targets[0] if targets else reference_texts[0]
        wavs = []
        for k, t in enumerate(np.linspace(0.0, 1.0, interpolation_steps)):
            z = slerp(embeddings[0], embeddings[1], float(t))
            result = synth.synthesize([text], z[None])[0]
            rendition, wav = writer.write("interpolation", f"step_{k}_t{t:.2f}", text, result)
            interpolation.append(rendition)
            wavs.append(wav)
            bar.update()
        if figures:
            title = f"{styles[0].description} -> {styles[1].description}"
            interpolation[0].figures["f0"] = writer.contours(interpolation, wavs, "interpolation", title)
    bar.close()

    measured = {r.name: r.measured for r in references}
    # raw values correlate only within one voice: references in another voice sit in its register
    own_voice = {style.name for style in styles if style.voice == DEFAULT_VOICE}
    correlations = {
        key: _pearson(
            [
                (measured[t.source][key], t.measured[key])
                for t in transfers
                if t.measured and measured[t.source] and t.source in own_voice
            ]
        )
        for key, _ in QUANTITIES
    }
    result = DemoResult(
        out_dir=str(out_dir),
        # the shipped model is named by its package path, not by where this installation put it
        model=str(model) if model is not None else f"prosody_vae/assets/{model_path.name} (shipped)",
        provenance=provenance,
        references=references,
        transfers=transfers,
        samples=samples,
        interpolation=interpolation,
        correlations=correlations,
        vocoder=_vocoder_name(synth, gl_iters),
        voice_means=voice_means,
    )
    write_text_atomic(out_dir / "summary.json", json.dumps(asdict(result), indent=2))
    write_report(result, out_dir)
    return result


DEFAULT_VOICE = "en-us"  # the voice of the built-in default corpus, and of the demo's own references
VOICE_CLIPS = 3  # recordings of a voice the model does not know that give it that voice's mean F0


def _reference_voice(
    synth: Synthesizer, voice: str, out_dir: Path, sentences: Sequence[str], means: dict[str, float]
) -> tuple[str | None, float | None]:
    """What the posterior is told of a reference spoken by ``voice``: (its speaker name, its voice's
    mean F0 in Hz), as a user would tell it. A voice of the model's speaker table is named; another
    voice, for a model that reads F0 relative to the voice, gets its mean F0 from :data:`VOICE_CLIPS`
    other recordings of it at espeak-ng's middle settings (written to ``references/voices/``, so that
    ``transfer --reference-voice-clips`` can reuse them); a single-voice model is told nothing."""
    if voice in synth.speakers:
        return voice, None
    if not synth.reads_relative_f0:
        return None, None
    if voice not in means:
        clips = []
        for i, text in enumerate(sentences[-VOICE_CLIPS:]):  # sentences no reference or target speaks
            clip = out_dir / "references" / "voices" / f"{voice}_{i}.wav"
            synthesize(text, pitch=50, pitch_range=50, rate=175, voice=voice, out_path=clip)
            write_text_atomic(clip.with_suffix(".txt"), text + "\n")
            clips.append(clip)
        means[voice] = synth.voice_f0(clips)
    return None, means[voice]


def _provenance(path: Path) -> dict:
    from prosody_vae.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    record = dict(state.get("provenance", {"step": state.get("step")}))
    record["capacity"] = state["config"]["capacity"]["capacity"]
    record["latent_dim"] = state["config"]["prosody"]["latent_dim"]
    record["beta"] = state.get("beta")
    record["file_mib"] = round(path.stat().st_size / 2**20, 2)
    return record
