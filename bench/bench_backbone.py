"""Time the Tacotron2 backbone on the reference implementation's benchmark workload (Coqui TTS 0.28).

Training step: batch 8, mel lengths 400..300, text lengths 80..60, 80 mels, conditioning of size 128
(a Capacitron z), forward + L1 (decoder and postnet) + stop BCE + guided attention + backward + Adam.
Inference: 80 tokens, 500 decoder steps with the stop token disabled.

    .venv/bin/python bench/bench_backbone.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from prosody_vae.prosody.masking import lengths_to_mask
from prosody_vae.tts.backbones import Tacotron2
from prosody_vae.tts.backbones.auxiliary_losses import guided_attention_loss, stop_loss

MEL_LENGTHS = [400, 386, 371, 357, 343, 329, 314, 300]
TEXT_LENGTHS = [80, 77, 74, 71, 69, 66, 63, 60]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed training steps (after one warm-up)")
    parser.add_argument("--r", type=int, default=2)
    parser.add_argument("--attention", default="dca", choices=["dca", "location"])
    parser.add_argument("--infer-steps", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = Tacotron2(n_symbols=64, r=args.r, conditioning_dim=128, attention=args.attention)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tl, ml = torch.tensor(TEXT_LENGTHS), torch.tensor(MEL_LENGTHS)
    tokens = torch.randint(1, 64, (8, int(tl.max()))) * lengths_to_mask(tl)
    mels = torch.randn(8, int(ml.max()), 80) * lengths_to_mask(ml).unsqueeze(-1)
    conditioning = torch.randn(8, 128)
    frame_mask = lengths_to_mask(ml).unsqueeze(-1)

    def train_step() -> float:
        start = time.perf_counter()
        out = model(tokens, tl, mels, ml, conditioning)
        l1 = ((out.mel - mels).abs() * frame_mask).sum() + ((out.mel_post - mels).abs() * frame_mask).sum()
        loss = l1 / (frame_mask.sum() * 80) + stop_loss(out.stop_logits, ml)
        loss = loss + guided_attention_loss(out.alignments, tl, model.decoder_lengths(ml))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    model.train()
    train_step()  # warm-up
    times = [train_step() for _ in range(args.repeats)]
    step = statistics.median(times)

    model.eval()
    with torch.no_grad():
        model.stop_projection.bias.fill_(-1e4)  # never stop: time exactly --infer-steps steps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.infer(tokens[:1], tl[:1], conditioning[:1], max_steps=20)  # warm-up
        start = time.perf_counter()
        out = model.infer(tokens[:1], tl[:1], conditioning[:1], max_steps=args.infer_steps)
        infer_time = time.perf_counter() - start
    audio_seconds = int(out.mel_lengths[0]) * 256 / 22050

    print(f"threads={args.threads} r={args.r} attention={args.attention} parameters={n_params / 1e6:.2f} M")
    print(
        f"training step: median {step:.3f} s over {args.repeats} (min {min(times):.3f}, max {max(times):.3f})"
    )
    print(f"training throughput: {8 * int(ml.max()) / step:.0f} mel frames/s (padded)")
    print(
        f"inference: {args.infer_steps} steps in {infer_time:.3f} s = {1000 * infer_time / args.infer_steps:.2f} ms/step, "
        f"real-time factor {infer_time / audio_seconds:.3f} (no vocoder)"
    )


if __name__ == "__main__":
    main()
