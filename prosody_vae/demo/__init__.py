"""The one-command demo with the shipped model (``prosody-vae demo``): see :mod:`prosody_vae.demo.run`."""

from prosody_vae.demo.run import STYLES, DemoResult, ReferenceStyle, run_demo

__all__ = ["STYLES", "DemoResult", "ReferenceStyle", "run_demo"]
