"""What annotate and render write beyond doc.ents: ids as strings always, the span groups with
their scores (--spans), and a probability threshold (--threshold)."""
import json
import re
from collections import Counter
from typing import Dict, List

import pytest
from helpers import cli, write_input

from spacy_taughtnet.formats import Record, format_record

SPANS_KEY = "taughtnet"  # the span group of the pipe of model_path (conftest.py)


def annotate(model_path, src, out, *options) -> List[Dict]:
    result = cli("annotate", model_path, src, out, "--no-progress", *options)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]


def test_ids_are_strings_in_one_output(tmp_path, model_path):
    """Line numbers (text input, or JSONL records without an id) were written as numbers
    beside the string ids of other records."""
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "PMC1", "text": "Aspirin ."}\n{"text": "Cisplatin ."}\n{"id": 7, "text": "BRCA1 ."}\n', encoding="utf8")
    docs = annotate(model_path, src, tmp_path / "out.jsonl")
    assert [d["id"] for d in docs] == ["PMC1", "2", "7"]
    docs = annotate(model_path, write_input(tmp_path / "in.txt", "text"), tmp_path / "text.jsonl")
    assert [d["id"] for d in docs] == [str(i) for i in range(1, len(docs) + 1)]


def test_resuming_an_output_with_number_ids_is_refused(tmp_path, model_path):
    src, out = write_input(tmp_path / "in.txt", "text"), tmp_path / "out.jsonl"
    docs = annotate(model_path, src, out)
    # as an annotate before string ids wrote it, cut short by an interruption
    old = [dict(d, id=int(d["id"])) for d in docs[:3]]
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in old), encoding="utf8")
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1
    assert f"{out}:1: the id 1 is a number" in result.output and "--overwrite" in result.output
    assert annotate(model_path, src, out, "--overwrite") == docs


def test_format_record_writes_a_number_id_as_a_string():
    record = Record(id=3, text="Aspirin .", line=3)
    assert json.loads(format_record(record, [], "jsonl"))["id"] == "3"


def test_spans_and_threshold(tmp_path, model_path):
    src = write_input(tmp_path / "in.txt", "text")
    docs = annotate(model_path, src, tmp_path / "all.jsonl", "--spans")
    assert all(set(d) == {"id", "text", "entities", "spans"} for d in docs)
    assert all(list(d["spans"]) == ([SPANS_KEY] if d["text"].strip() else []) for d in docs)
    scores = []
    for doc in docs:
        for span in doc["spans"].get(SPANS_KEY, []):
            assert set(span) == {"start", "end", "label", "text", "confidence"}
            assert doc["text"][span["start"]:span["end"]] == span["text"] and 0.0 < span["confidence"] <= 1.0
            scores.append(span["confidence"])
        # joint heads: the span group holds the entities (none were on the docs before)
        assert doc["spans"].get(SPANS_KEY, []) == doc["entities"]
    assert len(scores) >= 5
    threshold = sorted(scores)[len(scores) // 2]
    kept = annotate(model_path, src, tmp_path / "kept.jsonl", "--spans", "--threshold", str(threshold))
    for doc, full in zip(kept, docs):
        assert doc["entities"] == [e for e in full["entities"] if e["confidence"] >= threshold]
        assert doc["spans"] == {key: [s for s in group if s["confidence"] >= threshold] for key, group in full["spans"].items()}
    n_kept = sum(len(d["entities"]) for d in kept)
    assert 0 < n_kept < len(scores)
    # without --spans, the threshold applies to the entities
    plain = annotate(model_path, src, tmp_path / "plain.jsonl", "--threshold", str(threshold))
    assert [d["entities"] for d in plain] == [d["entities"] for d in kept] and all("spans" not in d for d in plain)
    # a resumed output keeps its options
    result = cli("annotate", model_path, src, tmp_path / "kept.jsonl", "--no-progress", "--spans", "--threshold", "0.1")
    assert result.exit_code == 1 and f"--threshold 0.1 (was --threshold {threshold})" in result.output


def test_spans_and_threshold_errors(tmp_path, model_path):
    src = write_input(tmp_path / "in.txt", "text")
    result = cli("annotate", model_path, src, tmp_path / "out.pubtator", "--no-progress", "--spans")
    assert result.exit_code == 1 and "--spans writes JSONL" in result.output
    for bad in ("1.5", "-0.1"):
        result = cli("annotate", model_path, src, tmp_path / "out.jsonl", "--no-progress", "--threshold", bad)
        assert result.exit_code == 2 and "--threshold" in result.output
    result = cli("annotate", model_path, src, tmp_path / "out.jsonl", "--help")
    assert "--spans" in result.output and "--threshold" in result.output


def drawn_span_labels(html: str) -> Counter:
    """The labels displaCy's "span" style draws, one per span."""
    return Counter(re.findall(r"z-index: 10;[^>]*>\s*([^<]+?)\s*</span>", html))


def test_render_spans_with_scores_and_threshold(tmp_path, model_path):
    src = write_input(tmp_path / "in.txt", "text")
    docs = annotate(model_path, src, tmp_path / "all.jsonl", "--spans")
    spans = [(s["label"], s["confidence"]) for d in docs for s in d["spans"].get(SPANS_KEY, [])]
    entities = [e["confidence"] for d in docs for e in d["entities"]]
    threshold = sorted(c for _, c in spans)[len(spans) // 2]
    page = tmp_path / "page.html"
    for options, kept in ((["--spans"], 0.0), (["--spans", "--threshold", str(threshold)], threshold)):
        result = cli("render", model_path, src, page, *options)
        assert result.exit_code == 0, result.output
        html = page.read_text(encoding="utf8")
        assert '<div class="spans"' in html and "<mark" not in html
        assert drawn_span_labels(html) == Counter(f"{label} {c:.2f}" for label, c in spans if c >= kept)
    # doc.ents (style "ent"), with the threshold
    for options, kept in (([], 0.0), (["--threshold", str(threshold)], threshold)):
        result = cli("render", model_path, src, page, *options)
        assert result.exit_code == 0, result.output
        html = page.read_text(encoding="utf8")
        assert html.count("<mark") == sum(c >= kept for c in entities) and '<div class="spans"' not in html
    assert sum(c >= threshold for c in entities) < len(entities)


@pytest.mark.ray
def test_ray_writes_the_spans_and_threshold_as_local(cluster, model_path, tmp_path):
    src = write_input(tmp_path / "in.txt", "text")
    options = ["--spans", "--threshold", "0.5"]
    local = annotate(model_path, src, tmp_path / "local.jsonl", *options)
    assert any(d["spans"] for d in local)
    result = cli("annotate", model_path, src, tmp_path / "ray.jsonl", "--backend", "ray", "--num-actors", "1",
                 "--cpus-per-actor", "0.5", "--no-progress", *options)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
