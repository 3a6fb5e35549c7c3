"""BENCHMARKS.md, rendered from the results in benchmarks/*.json: an introduction, then one
section per results file (in SECTIONS order; a missing file's section is left out), each
naming the command that wrote the file, then the file's `notes`: provenance of its figures
written by hand into the JSON, which the command drops when it writes the file again."""
import json
from pathlib import Path
from typing import Callable, Dict, List

from ..atomic import atomic_path
from . import (  # duplicates check: an import block, alike wherever these modules are imported
    broad,
    cnn,
    compare_ner,
    head_targets,
    merges,
    overlaps,
    ray_annotate,
    results,
    seeds,
    teachers,
    transformers,
)

SECTIONS: Dict[str, Callable[[Dict], List[str]]] = {
    "results.json": results.section,
    "broad.json": broad.section,
    "seeds.json": seeds.section,
    "cnn.json": cnn.section,
    "overlaps.json": overlaps.section,
    "overlaps_broad.json": overlaps.section,
    "merges.json": merges.section,
    "merges_shared.json": merges.shared_section,
    "head_targets.json": head_targets.section,
    "compare_ner.json": compare_ner.section,
    "transformers.json": transformers.section,
    "ray.json": ray_annotate.section,
    "teachers.json": teachers.section,
}
INTRO = """# Benchmarks

TaughtNet students against their teachers and against multi-type baselines: the default model
over six corpora of five types, and the TaughtNet paper's three corpora (NCBI-disease,
BC5CDR-chem, BC2GM), where most studies ran, with the CNN default configs and with transformer
configs on the CPU. Test splits are scored with seqeval (entity level, exact match), each
corpus on its own entity type only; every model is selected on devel.

This page is generated: `python -m spacy_taughtnet benchmark report` (`spacy project run
benchmarks-report`) renders it from the results in `benchmarks/*.json`, which the command
each section names writes. Edit a JSON file (its `notes` for provenance), never this page:
a test checks that the page is the rendering of the files. How the defaults were chosen, and
the findings drawn from these figures, are in [docs/experiments.md](docs/experiments.md)
(history, not current figures)."""


def notes_lines(notes: List[str]) -> List[str]:
    return ["### Notes", "", *(f"- {note}" for note in notes)] if notes else []


def render(folder: Path) -> str:
    """The page from the results files in `folder`."""
    parts = [INTRO]
    for name, section in SECTIONS.items():
        path = Path(folder) / name
        if path.is_file():
            results = json.loads(path.read_text(encoding="utf8"))
            lines = section(results) + [""] + notes_lines(results.get("notes", []))
            parts.append("\n".join(lines).strip("\n"))
    return "\n\n".join(parts) + "\n"


def write_report(folder: Path, report: Path) -> None:
    text = render(folder)
    with atomic_path(report) as tmp:
        tmp.write_text(text, encoding="utf8")


def write_results(results: Dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")


def publish(results: Dict, path: Path, report: Path) -> None:
    """Write a benchmark's results file, then the page from its folder."""
    write_results(results, path)
    write_report(path.parent, report)
