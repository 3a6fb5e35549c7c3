"""spacy-taughtnet: one multi-type biomedical NER pipe distilled from single-type teachers."""
from .about import __version__
from .aggregate import aggregate_distributions
from .component import TaughtNetNER
from .corpora import build_union, read_docbin, read_iob, write_docbin
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


def __getattr__(name: str):
    # evaluate_corpus on first use: importing the package (and the pipe, through spaCy's entry
    # points) stays free of the evaluation module
    if name == "evaluate_corpus":
        from .evaluate import evaluate_corpus

        return evaluate_corpus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
