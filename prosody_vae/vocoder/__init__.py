"""Training our own vocoder: HiFi-GAN (Kong et al. 2020) on the library's mel front end.

``prosody-vae train-vocoder`` drives :func:`~prosody_vae.vocoder.loop.train_vocoder`; the generator
is :class:`prosody_vae.audio.hifigan.HifiGanGenerator`, exported in the original release's format so
that ``--vocoder <out>/g_<step>`` loads it (docs/vocoder.md, "Training our own vocoder").

config.py          VocoderConfig: YAML sections, typed at the door
discriminators.py  multi-period and multi-scale discriminators
losses.py          LSGAN, feature matching, mel L1, as named parts
data.py            random segments + their mels, skipped utterances, the run's datasets
sampler.py         resumable shuffled batches
teacher_forced.py  the acoustic model's teacher-forced mels, cached for fine-tuning
export.py          weight norm, the release's file format, train.init_from
state.py, step.py, validation.py, monitor.py, loop.py   the training run
"""
