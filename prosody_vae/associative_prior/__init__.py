"""Associative (ACN) prior: a learned p(z | c) conditioned on a neighbour's code from a code bank."""

from .code_bank import CodeBank, Neighbours, gather_codes
from .prior import AssociativePrior

__all__ = ["AssociativePrior", "CodeBank", "Neighbours", "gather_codes"]
