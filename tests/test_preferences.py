"""doc.ents's overlap preferences learnt on devel (preferences.py) and the pipe's setting."""
import pytest
import spacy
from helpers import SMALL_MODEL
from thinc.api import ConfigValidationError

from spacy_taughtnet.errors import ConfigError
from spacy_taughtnet.preferences import DevDoc, corpus_f1, fit_preferences, macro


def dev_docs():
    """Disease corpus: "breast cancer" (0, 2) is gold, the student also finds "breast" as
    Anatomy, more confident; Anatomy corpus: "liver" (3, 4) is gold, the student also finds
    "liver failure" (3, 5) as Disease, less confident. GENE never overlaps."""
    found = [(0, 2, "Disease", 0.7), (0, 1, "Anatomy", 0.9), (3, 5, "Disease", 0.6), (3, 4, "Anatomy", 0.8), (6, 7, "GENE", 0.9)]
    return [
        DevDoc("NCBI", "Disease", {(0, 2), (3, 5)}, found),
        DevDoc("AnatEM", "Anatomy", {(3, 4)}, found),
        DevDoc("BC2GM", "GENE", {(6, 7)}, found),
    ]


def test_corpus_f1_counts_each_corpus_on_its_own_type():
    docs = dev_docs()
    # confidence: Anatomy wins both overlaps: NCBI finds nothing, AnatEM finds "liver" and a wrong "breast"
    assert corpus_f1(docs, set()) == {"NCBI": 0.0, "AnatEM": pytest.approx(2 / 3), "BC2GM": 1.0}
    assert corpus_f1(docs, None) == {"NCBI": 1.0, "AnatEM": pytest.approx(2 / 3), "BC2GM": 1.0}  # the span group
    assert corpus_f1(docs, {("Disease", "Anatomy")}) == {"NCBI": 1.0, "AnatEM": 0.0, "BC2GM": 1.0}


def test_fit_keeps_a_preference_only_where_it_raises_the_macro_f1():
    docs = dev_docs()
    learnt = fit_preferences(docs)
    assert learnt == [["Disease", "Anatomy"]]
    assert macro(corpus_f1(docs, {("Disease", "Anatomy")})) > macro(corpus_f1(docs, set()))
    # where the confidence rule is already best, nothing is learnt
    agree = [DevDoc("AnatEM", "Anatomy", {(0, 1)}, [(0, 2, "Disease", 0.7), (0, 1, "Anatomy", 0.9)])]
    assert fit_preferences(agree) == []


def test_the_pipe_applies_its_preferences_and_checks_them():
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "heads": "per_type", "overlap_preferences": [["Disease", "Anatomy"]]})
    assert ner.cfg["overlap_preferences"] == [["Disease", "Anatomy"]]
    for bad in ([["Disease"]], [["Disease", "Disease"]]):
        with pytest.raises(ConfigError, match="overlap_preferences are \\[winner, loser\\] pairs"):
            spacy.blank("en").add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "overlap_preferences": bad})
    with pytest.raises(ConfigValidationError, match="overlap_preferences"):  # not a list of pairs: spaCy's check
        spacy.blank("en").add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "overlap_preferences": ["Disease", "Anatomy"]})
