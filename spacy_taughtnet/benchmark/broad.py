"""The default model (issue 22): one `all` run over the six corpora of five types, its teachers
and student per corpus and macro, the accuracy targets, the student's speed against its
teachers and the wall time of each stage.

ROOT is that run's folder, evaluated (`evaluate-all`: ROOT/metrics/). One run, not a mean over
seeds as the default's section: the section says so. Macro F1 weighs each corpus equally, so a
type that two corpora annotate (NCBI-disease and BC5CDR-disease, both Disease) counts twice.
"""
import json
import statistics
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..layout import RunLayout
from .cnn import pretrained_tok2vec, train_naive, train_stock_ner, union_budget
from .seeds import seed_rows
from .speed import SPEED_PASSES, run_words_per_second
from .tables import doc_ents_gap_targets, pct, target, target_lines

# the stages of `all` as ROOT/timings/ names them, in the order they run: pretrain (only with
# pretraining), each corpus's teacher (teacher-<corpus>, and teacher-<corpus>-seed<s> of an
# ensemble), distill-train and distill-transfer (only with transfer text), the student. Other
# files there (the systems `benchmark cnn` trains in the same folder) are no stage of `all`.
STAGE_ORDER = ("pretrain", "teacher-", "distill-", "student")
REQUIRED_STAGES = ("teacher-{corpus}", "distill-train", "student")
MAX_MINUTES = 120
MIN_WORDS_PER_SECOND = 20000
MIN_SPEEDUP = 5.0
MIN_MACRO_GAIN = 0.5  # points
# the baselines (trained with --NAME-steps): their name, what they are, and the least gain of the
# student's doc.ents macro F1 over theirs, in points (over the collapse: "by far more" than over
# the naive union)
BASELINES = {
    "naive": ("the naive union", "our per-type heads on the union's gold alone", 2.0),
    "collapse": ("the collapse", "spaCy's stock `ner` on the union's gold: one softmax over every type", 5.0),
}


def _rank(stage: str, corpora: Sequence[str]) -> Optional[tuple]:
    """The sort key of a stage of `all` (None: not one)."""
    for i, start in enumerate(STAGE_ORDER):
        if stage == start or (start.endswith("-") and stage.startswith(start)):
            name = stage[len(start):]
            position = next((j for j, c in enumerate(corpora) if name == c or name.startswith(f"{c}-seed")), len(corpora))
            return (i, position, stage)
    return None


def stage_seconds(root: Path, corpora: Sequence[str]) -> Dict[str, Optional[float]]:
    """The wall time (s) of each stage of `all` timed in ROOT/timings/, in the order they run;
    a stage every run has but this one did not time is None."""
    pattern = RunLayout(root).timings("*")
    timed = {path.stem: json.loads(path.read_text())["seconds"] for path in sorted(pattern.parent.glob(pattern.name))}
    required = [stage.format(corpus=c) for stage in REQUIRED_STAGES for c in (corpora if "{corpus}" in stage else [None])]
    stages = {stage: _rank(stage, corpora) for stage in [*timed, *required]}
    return {stage: timed.get(stage) for stage in sorted((s for s, rank in stages.items() if rank), key=lambda s: stages[s])}


def student_seed(root: Path) -> Optional[int]:
    """[training] seed of the student's config (None: no readable config)."""
    from spacy.util import load_config

    path = RunLayout(root).student_model / "config.cfg"
    try:
        return int(load_config(path, interpolate=True)["training"]["seed"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def figures(root: Path, corpora: Sequence[str]) -> Dict:
    """Each corpus's entity type and test F1 of its teacher and of the student (doc.ents, and
    its type's spans; a student without doc_ents figures counts its own for both)."""
    rows = seed_rows(root, corpora)
    student = rows["student"]
    return {
        "entity_types": {c: student[c].get("entity_type") or rows["teacher"][c].get("entity_type") for c in corpora},
        "test_f1": {
            "teacher": {c: rows["teacher"][c]["f1"] for c in corpora},
            "student": {c: student[c]["f1"] for c in corpora},
            "student_doc_ents": {c: student[c].get("doc_ents", student[c])["f1"] for c in corpora},
        },
    }


def baseline_figures(model: Path, root: Path, corpora: Sequence[str], name: str) -> Dict[str, Dict[str, float]]:
    """Test F1 of a baseline per corpus: its spans (`name`) and its doc.ents (`name`_doc_ents),
    as for the student; a pipeline without a span group (spaCy's `ner`) has only doc.ents,
    the same figures under both names."""
    import spacy

    from ..evaluate import evaluate_corpus

    nlp, layout = spacy.load(model), RunLayout(root)
    rows = {c: evaluate_corpus(nlp, layout.corpus(c, "test")) for c in corpora}
    return {name: {c: row["f1"] for c, row in rows.items()},
            f"{name}_doc_ents": {c: row.get("doc_ents", row)["f1"] for c, row in rows.items()}}


def measure(root: Path, corpora: Sequence[str], batch_size: int, naive_steps: int = 0, eval_frequency: int = 500,
            collapse_steps: int = 0) -> Dict:
    """The run's figures, the speed of its student and teachers, its stages' wall time; with
    naive_steps the naive union baseline, with collapse_steps the collapse (spaCy's stock `ner`
    on the union), each trained if missing, as `benchmark cnn` trains them: from the run's
    pretrained tok2vec. The results as benchmarks/broad.json holds them."""
    found = figures(root, corpora)
    steps = {"naive": naive_steps, "collapse": collapse_steps}
    for name, train in (("naive", train_naive), ("collapse", train_stock_ner)):
        if steps[name]:
            model = train(root, union_budget(steps[name], eval_frequency, pretrained_tok2vec(root)))
            found["test_f1"].update(baseline_figures(model, root, corpora, name))
    speed = run_words_per_second(root, corpora, batch_size)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    budget = "".join(f" --{name}-steps {n}" for name, n in steps.items() if n)
    budget += f" --eval-frequency {eval_frequency}" if budget else ""
    return {
        "command": f"python -m spacy_taughtnet benchmark broad {root} --corpora \"{' '.join(corpora)}\"{budget}",
        "commit": head, "root": str(root), "corpora": list(corpora), "seed": student_seed(root),
        "batch_size": batch_size, **found,
        "words_per_second": speed,
        "wall_seconds": stage_seconds(root, corpora),
    }


def summary(results: Dict) -> Dict:
    """Macro F1 of each system over the corpora, each corpus weighing equally."""
    return {system: statistics.fmean(f1[c] for c in results["corpora"]) for system, f1 in results["test_f1"].items()}


def wall_minutes(results: Dict) -> Optional[float]:
    """Minutes of the timed stages of `all` (None: a stage every run has was not timed)."""
    seconds = results["wall_seconds"].values()
    return None if None in seconds else sum(seconds) / 60


def targets(results: Dict) -> List[Dict]:
    f1, macro, corpora = results["test_f1"], summary(results), results["corpora"]
    out = []
    for c in corpora:
        gap = (f1["student_doc_ents"][c] - f1["teacher"][c]) * 100
        out.append(target(f"student doc.ents F1 >= its teacher's on {c} (one run)", f"{gap:+.2f} points", gap >= 0))
    gain = (macro["student_doc_ents"] - macro["teacher"]) * 100
    out.append(target(f"student doc.ents macro F1 >= teachers' macro F1 + {MIN_MACRO_GAIN}", f"{gain:+.2f} points",
                      gain >= MIN_MACRO_GAIN))
    for name, (shown, _, least) in BASELINES.items():
        if f"{name}_doc_ents" in f1:
            gain = (macro["student_doc_ents"] - macro[f"{name}_doc_ents"]) * 100
            out.append(target(f"student doc.ents macro F1 >= {shown}'s + {least:g}", f"{gain:+.2f} points", gain >= least))
    out += doc_ents_gap_targets(f1["student_doc_ents"], f1["student"], "one run")
    wps = results["words_per_second"]
    speedup = wps["student"] / wps["teachers"]
    out.append(target("student >= 20k words/s in one CPU process", f"{wps['student']:,.0f} words/s",
                      wps["student"] >= MIN_WORDS_PER_SECOND))
    out.append(target(f"student >= {MIN_SPEEDUP:g}x the {len(corpora)} teachers (one per corpus, one after another)",
                      f"{speedup:.2f}x", speedup >= MIN_SPEEDUP))
    minutes = wall_minutes(results)
    untimed = [stage for stage, seconds in results["wall_seconds"].items() if seconds is None]
    out.append(target(f"the timed stages of `all` within {MAX_MINUTES} minutes",
                      f"{minutes:.0f} min" if minutes is not None else f"n/a (not timed: {', '.join(untimed)})",
                      minutes is not None and minutes <= MAX_MINUTES))
    return out


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/broad.json."""
    f1, macro, corpora, types = results["test_f1"], summary(results), results["corpora"], results["entity_types"]
    run = "one run" if results.get("seed") is None else f"one run, seed {results['seed']} of the student's config"
    lines = [
        f"## The default model: {len(corpora)} corpora, {len(set(types.values()))} types (one run)", "",
        f"Command: `{results['command']}`, after `all` once over these corpora (a whole run: pretraining, teachers, "
        f"distributions, student; tabulated at commit {results['commit']}); every figure is in `benchmarks/broad.json`. "
        f"These are the figures of {run}, not means (the seeds section's are). "
        "Test F1 (%). The headline is the student's `doc.ents`, what users read (overlaps across types resolved); "
        "beside it, its span group's predictions for each corpus's type (the type's head, `doc.spans`). Macro F1 "
        "weighs each corpus equally, also where two corpora annotate one type.", "",
        "| corpus | type | teacher | student `doc.ents` | `doc.ents` - teacher | student spans | spans - teacher |",
        "|---|---|---|---|---|---|---|",
    ]
    ents, spans, teacher = f1["student_doc_ents"], f1["student"], f1["teacher"]
    for c in corpora:
        lines.append(
            f"| {c} | {types[c]} | {pct(teacher[c])} | **{pct(ents[c])}** | {(ents[c] - teacher[c]) * 100:+.2f} | "
            f"{pct(spans[c])} | {(spans[c] - teacher[c]) * 100:+.2f} |"
        )
    lines.append(
        f"| macro | | {pct(macro['teacher'])} | **{pct(macro['student_doc_ents'])}** | "
        f"{(macro['student_doc_ents'] - macro['teacher']) * 100:+.2f} | {pct(macro['student'])} | "
        f"{(macro['student'] - macro['teacher']) * 100:+.2f} |"
    )
    for name, (shown, what, _) in BASELINES.items():
        if f"{name}_doc_ents" in f1:
            spans_of, ents_of = f1[name], f1[f"{name}_doc_ents"]
            lines += [
                "", f"Baseline: {shown}, {what}, without teachers, so each corpus's other types are O; from the run's "
                "pretrained tok2vec, with the budget in the command.", "",
                f"| corpus | {name} `doc.ents` | {name} spans | student `doc.ents` - {name} `doc.ents` |", "|---|---|---|---|",
                *(f"| {c} | {pct(ents_of[c])} | {pct(spans_of[c])} | {(ents[c] - ents_of[c]) * 100:+.2f} |" for c in corpora),
                f"| macro | {pct(macro[f'{name}_doc_ents'])} | {pct(macro[name])} | "
                f"{(macro['student_doc_ents'] - macro[f'{name}_doc_ents']) * 100:+.2f} |",
            ]
    wps, minutes = results["words_per_second"], wall_minutes(results)
    lines += [
        "", f"Speed (test splits, batch {results['batch_size']}, one process each, fresh processes, each model's fastest "
        f"of {SPEED_PASSES} passes): student {wps['student']:,.0f} words/s, the {len(corpora)} teachers one after another "
        f"{wps['teachers']:,.0f} words/s ({wps['student'] / wps['teachers']:.2f}x).",
        "", "### Wall time of each stage of `all` (min)", "", "| stage | minutes |", "|---|---|",
        *(f"| {stage} | {'n/a' if s is None else f'{s / 60:.1f}'} |" for stage, s in results["wall_seconds"].items()),
        f"| total | {'n/a' if minutes is None else f'{minutes:.1f}'} |",
        "", *target_lines(targets(results)),
    ]
    return lines
