"""PubMed baseline XML (`pubmed*.xml.gz`) as an input of `annotate`, and gzipped input files."""
import json
from pathlib import Path

import pytest
from helpers import PUBMED_XML, cli, gzipped, train_model

from spacy_taughtnet.errors import AnnotateError
from spacy_taughtnet.formats import InputFiles, detect_format, read_records

EXPECTED = [
    ("1000001", "Cisplatin induced renal failure in mice .", "Patients with breast cancer received aspirin ."),
    ("1000002", "Expression of BRCA1 was reduced in rats with diabetes .",
     "Tamoxifen blocked EGFR in zebrafish . The risk of asthma rose when p53 was mutated & caffeine \u03b1-blocked it ."),
    ("1000003", "We studied caffeine and dopamine in humans .", ""),
]


def test_read_pubmed_xml(tmp_path):
    records = list(read_records(PUBMED_XML, "pubmed"))
    assert [(r.id, r.title, r.abstract) for r in records] == EXPECTED
    assert [r.text for r in records] == [f"{t} {a}" if a else t for _, t, a in EXPECTED]
    assert [r.line for r in records] == [1, 2, 3]  # the article's number in the file
    baseline = gzipped(PUBMED_XML, tmp_path / "pubmed24n0001.xml.gz")
    assert detect_format(baseline, None) == "pubmed"
    assert list(read_records(baseline, "pubmed")) == records


def test_gzipped_jsonl_reads_as_plain(tmp_path):
    plain = tmp_path / "in.jsonl"
    plain.write_text('{"id": "a", "text": "Cisplatin in mice ."}\n{"id": "b", "text": "aspirin"}\n', encoding="utf8")
    packed = gzipped(plain, tmp_path / "in.jsonl.gz")
    assert detect_format(packed, None) == "jsonl"
    assert list(read_records(packed, "jsonl")) == list(read_records(plain, "jsonl"))


def test_truncated_xml_is_one_error(tmp_path):
    cut = tmp_path / "pubmed_cut.xml"
    cut.write_bytes(PUBMED_XML.read_bytes()[:1500])
    with pytest.raises(AnnotateError, match=r"pubmed_cut.xml: not valid PubMed XML after article 2: "):
        list(read_records(cut, "pubmed"))


def baseline_shards(folder: Path) -> Path:
    """Two baseline files (the fixture, and the fixture with PMIDs 2000001-2000003) and a
    file that is not one, in `folder`; returns the pattern of the two."""
    folder.mkdir(parents=True, exist_ok=True)
    gzipped(PUBMED_XML, folder / "pubmed24n0001.xml.gz")
    second = folder / "second.xml"
    second.write_bytes(PUBMED_XML.read_bytes().replace(b">100000", b">200000"))
    gzipped(second, folder / "pubmed24n0002.xml.gz")
    second.unlink()
    (folder / "pubmed24n0002.xml.gz.md5").write_text("not read: the pattern does not match it")
    return folder / "pubmed24n*.xml.gz"


def test_glob_of_baseline_files(tmp_path):
    pattern = baseline_shards(tmp_path / "baseline")
    inputs, fmt = InputFiles.resolve(pattern, None)
    assert fmt == "pubmed" and inputs.names == ["pubmed24n0001.xml.gz", "pubmed24n0002.xml.gz"]
    records = list(inputs.records(fmt))
    assert [(r.id, r.file, r.line) for r in records] == [
        ("1000001", 0, 1), ("1000002", 0, 2), ("1000003", 0, 3), ("2000001", 1, 1), ("2000002", 1, 2), ("2000003", 1, 3)]
    assert [r.text for r in records[3:]] == [r.text for r in records[:3]]


def test_annotate_pubmed_baseline(tmp_path):
    model = tmp_path / "model"
    train_model().to_disk(model)
    baseline = gzipped(PUBMED_XML, tmp_path / "pubmed24n0001.xml.gz")
    result = cli("annotate", model, baseline, tmp_path / "out.pubtator", "--no-progress")
    assert result.exit_code == 0, result.output
    blocks = (tmp_path / "out.pubtator").read_text(encoding="utf8").split("\n\n")[:-1]
    assert [block.split("\n")[:2] for block in blocks] == [[f"{p}|t|{t}", f"{p}|a|{a}"] for p, t, a in EXPECTED]
    result = cli("annotate", model, baseline, tmp_path / "out.jsonl", "--no-progress")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf8").splitlines()]
    assert [row["id"] for row in rows] == ["1000001", "1000002", "1000003"]
    for row in rows:
        assert all(row["text"][e["start"]:e["end"]] == e["text"] for e in row["entities"])
    assert any(row["entities"] for row in rows)

    cut = tmp_path / "pubmed_cut.xml"
    cut.write_bytes(PUBMED_XML.read_bytes()[:1500])
    result = cli("annotate", model, cut, tmp_path / "cut.jsonl", "--no-progress")
    assert result.exit_code == 1 and "not valid PubMed XML after article 2" in result.output
    assert not (tmp_path / "cut.jsonl").exists()
