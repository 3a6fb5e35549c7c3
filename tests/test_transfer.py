import gzip
import hashlib
import json

import pytest
import spacy

from spacy_taughtnet.corpora import CORPUS_KEY, doc_entity_type
from spacy_taughtnet.errors import CorpusError
from spacy_taughtnet.transfer import (
    build_transfer_text,
    read_transfer_docs,
    transfer_files,
)


def write_tsv(path, sentences):
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = ["\n".join(f"{token}\tO" for token in sentence.split()) for sentence in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf8")
    return path


@pytest.fixture
def sources(tmp_path):
    a_train = write_tsv(tmp_path / "A-IOB" / "train.tsv", [
        "-DOCSTART-", "Mice lacking p53 develop tumours .", "Too short", "Held out sentence here .",
        "Mice lacking p53 develop tumours .",
    ])
    a_test = write_tsv(tmp_path / "A-IOB" / "test.tsv", ["A second source sentence ."])
    b_train = write_tsv(tmp_path / "B-IOB" / "train.tsv", [
        "Mice lacking p53 develop tumours .", "Cells were grown in serum .",
    ])
    held_out = write_tsv(tmp_path / "eval" / "test.tsv", ["Held out sentence here ."])
    return [("A", a_train), ("A", a_test), ("B", b_train)], [held_out]


def test_build_applies_the_rule(sources, tmp_path):
    pairs, exclude = sources
    counts = build_transfer_text(pairs, exclude, tmp_path / "transfer")
    lines = {
        name: gzip.open(tmp_path / "transfer" / f"{name}.txt.gz", "rt", encoding="utf8").read().splitlines()
        for name in ("A", "B")
    }
    # -DOCSTART- skipped, the 2-token sentence dropped, the held-out one dropped, duplicates
    # dropped keeping the first occurrence (so B loses the sentence A already gave).
    assert lines == {
        "A": ["Mice lacking p53 develop tumours .", "A second source sentence ."],
        "B": ["Cells were grown in serum ."],
    }
    assert counts == {"A": {"sentences": 2, "tokens": 11}, "B": {"sentences": 1, "tokens": 6}}
    assert json.loads((tmp_path / "transfer" / "counts.json").read_text()) == counts


def test_build_is_byte_reproducible(sources, tmp_path):
    pairs, exclude = sources
    digests = []
    for out in ("one", "two"):
        build_transfer_text(pairs, exclude, tmp_path / out)
        digests.append(hashlib.md5((tmp_path / out / "A.txt.gz").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_build_errors(sources, tmp_path):
    pairs, exclude = sources
    with pytest.raises(CorpusError, match="missing.tsv: source file not found"):
        build_transfer_text([("A", tmp_path / "missing.tsv")], exclude, tmp_path / "out")
    only_held_out = [("A", exclude[0])]
    with pytest.raises(CorpusError, match="no transfer sentences left"):
        build_transfer_text(only_held_out, exclude, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_read_transfer_docs(sources, tmp_path):
    pairs, exclude = sources
    build_transfer_text(pairs, exclude, tmp_path / "transfer")
    vocab = spacy.blank("en").vocab
    docs = list(read_transfer_docs(transfer_files(tmp_path / "transfer"), vocab))
    assert [doc.text for doc in docs] == [
        "Mice lacking p53 develop tumours . ", "A second source sentence . ", "Cells were grown in serum . ",
    ]
    assert [doc.user_data[CORPUS_KEY] for doc in docs] == ["transfer:A", "transfer:A", "transfer:B"]
    assert all(doc_entity_type(doc) is None and len(doc.ents) == 0 for doc in docs)
    only_b = list(read_transfer_docs(transfer_files(tmp_path / "transfer"), vocab, sources=["B"]))
    assert [doc.user_data[CORPUS_KEY] for doc in only_b] == ["transfer:B"]
    first = list(read_transfer_docs(transfer_files(tmp_path / "transfer"), vocab, limit=1))
    assert len(first) == 2  # one per file


def test_read_transfer_errors(tmp_path):
    with pytest.raises(CorpusError, match="no transfer text here"):
        transfer_files(tmp_path)
    bad = tmp_path / "bad.txt.gz"
    with gzip.open(bad, "wt", encoding="utf8") as out:
        out.write("fine line here\ntwo  spaces\n")
    with pytest.raises(CorpusError, match=r"bad.txt.gz:2: tokens must be separated by single spaces"):
        list(read_transfer_docs([bad], spacy.blank("en").vocab))
