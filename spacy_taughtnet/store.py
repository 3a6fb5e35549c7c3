"""Deprecated: renamed distributions.py in 0.2; this alias goes in 0.3."""
import warnings

from .distributions import *  # noqa: F401,F403

warnings.warn(
    "spacy_taughtnet.store is deprecated and goes in 0.3: import spacy_taughtnet.distributions",
    DeprecationWarning,
    stacklevel=2,
)
