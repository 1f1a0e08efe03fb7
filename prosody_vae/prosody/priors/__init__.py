"""Priors over the prosody latent z: the :class:`Prior` protocol, the standard normal and the
associative (ACN) prior."""

from prosody_vae.prosody.priors.associative import AssociativePrior
from prosody_vae.prosody.priors.base import Prior
from prosody_vae.prosody.priors.code_bank import CodeBank, Neighbours, gather_codes
from prosody_vae.prosody.priors.standard import StandardNormalPrior

__all__ = ["AssociativePrior", "CodeBank", "Neighbours", "Prior", "StandardNormalPrior", "gather_codes"]
