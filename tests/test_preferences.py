"""doc.ents's overlap preferences learnt on devel (preferences.py) and the pipe's setting."""
import pytest
import spacy
from helpers import SMALL_MODEL
from thinc.api import ConfigValidationError

from spacy_taughtnet.ents import choose_ents, overlap_relation
from spacy_taughtnet.errors import ConfigError
from spacy_taughtnet.preferences import (
    DevDoc,
    corpus_f1,
    fit_preferences,
    has_overlaps,
    macro,
)


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
    assert learnt == [["Disease", "Anatomy", "contains"]]
    assert macro(corpus_f1(docs, {("Disease", "Anatomy", "contains")})) > macro(corpus_f1(docs, set()))
    # where the confidence rule is already best, nothing is learnt
    agree = [DevDoc("AnatEM", "Anatomy", {(0, 1)}, [(0, 2, "Disease", 0.7), (0, 1, "Anatomy", 0.9)])]
    assert fit_preferences(agree) == []


def test_overlap_relations_are_seen_from_the_first_span():
    assert overlap_relation((0, 2), (0, 2)) == "same"
    assert overlap_relation((0, 3), (1, 2)) == "contains" and overlap_relation((1, 2), (0, 3)) == "inside"
    assert overlap_relation((0, 2), (0, 1)) == "contains" and overlap_relation((0, 1), (0, 2)) == "inside"
    assert overlap_relation((0, 2), (1, 3)) == "crossing" == overlap_relation((1, 3), (0, 2))
    assert has_overlaps(DevDoc("c", "T", set(), [(0, 5, "A", 0.5), (1, 2, "B", 0.5), (3, 4, "C", 0.5)]))
    assert has_overlaps(DevDoc("c", "T", set(), [(2, 3, "A", 0.5), (2, 3, "B", 0.5)]))
    assert not has_overlaps(DevDoc("c", "T", set(), [(0, 2, "A", 0.5), (2, 3, "B", 0.5)]))


def test_a_preference_with_a_relation_holds_only_where_the_spans_overlap_that_way():
    nested = [(0, 2, "Disease", 0.6), (0, 1, "Anatomy", 0.9)]  # "lung cancer" / "lung"
    same = [(0, 1, "Disease", 0.6), (0, 1, "Anatomy", 0.9)]  # "tumour" as either
    rule = {("Disease", "Anatomy", "contains")}
    assert choose_ents(nested, (), rule) == [0] and choose_ents(same, (), rule) == [1]
    assert choose_ents(nested, (), {("Disease", "Anatomy")}) == [0] == choose_ents(same, (), {("Disease", "Anatomy")})
    assert choose_ents(nested, (), {("Disease", "Anatomy", "inside")}) == [1]


def test_fit_learns_a_winner_for_each_way_two_types_overlap():
    """NCBI marks the disease around an organ, "lung cancer"; AnatEM marks "tumour" alone as
    anatomy, where the student also says Disease, more confidently: Disease should win where it
    contains Anatomy, Anatomy where both claim the same tokens. One rule per pair of types
    cannot have both."""
    nested = [(0, 2, "Disease", 0.6), (0, 1, "Anatomy", 0.9)]
    same = [(3, 4, "Disease", 0.9), (3, 4, "Anatomy", 0.6)]
    docs = [DevDoc("NCBI", "Disease", {(0, 2)}, nested), DevDoc("AnatEM", "Anatomy", {(3, 4)}, same)]
    learnt = fit_preferences(docs)
    assert learnt == [["Anatomy", "Disease", "same"], ["Disease", "Anatomy", "contains"]]
    assert corpus_f1(docs, {tuple(p) for p in learnt}) == {"NCBI": 1.0, "AnatEM": 1.0}
    for pair in ({("Disease", "Anatomy")}, {("Anatomy", "Disease")}, set()):
        assert macro(corpus_f1(docs, pair)) <= 0.5


def test_the_pipe_applies_its_preferences_and_checks_them():
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "heads": "per_type", "overlap_preferences": [["Disease", "Anatomy"]]})
    assert ner.cfg["overlap_preferences"] == [["Disease", "Anatomy"]]
    triple = [["Disease", "Anatomy", "contains"]]
    assert spacy.blank("en").add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "overlap_preferences": triple}).cfg["overlap_preferences"] == triple
    for bad in ([["Disease"]], [["Disease", "Disease"]], [["Disease", "Anatomy", "near"]], [["Disease", "Anatomy", "same", "x"]]):
        with pytest.raises(ConfigError, match="overlap_preferences are \\[winner, loser\\] pairs"):
            spacy.blank("en").add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "overlap_preferences": bad})
    with pytest.raises(ConfigValidationError, match="overlap_preferences"):  # not a list of pairs: spaCy's check
        spacy.blank("en").add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "overlap_preferences": ["Disease", "Anatomy"]})
