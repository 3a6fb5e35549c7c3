"""spacy-taughtnet: one multi-type biomedical NER pipe distilled from single-type teachers."""
from .about import __version__
from .aggregate import aggregate_distributions
from .component import TaughtNetNER
from .corpora import build_union, read_docbin, read_iob, write_docbin
from .evaluate import evaluate_corpus
from .loss import DistillationLoss
from .scorer import score_entities

__all__ = [
    "__version__",
    "aggregate_distributions",
    "DistillationLoss",
    "TaughtNetNER",
    "score_entities",
    "read_iob",
    "read_docbin",
    "write_docbin",
    "build_union",
    "evaluate_corpus",
]
