"""Teachers beyond `taughtnet_ner` (issue 16): stock spaCy `ner` teachers (one-hot, label
smoothing), a `beam_ner`, two teachers of one type merged by mean or product, and the
multi-type rule against the naive per-type split.

Distribution level (cheap, no student): every teacher runs over each corpus's devel split;
each arm's rows are merged and aggregated as `distill-teachers` builds them
(distill.combine), decoded with the constrained Viterbi (decoding.py: the BILUO targets the
student is taught, spread from the global BIO rows) and scored with seqeval on that corpus's
own type. The same rows, folded onto that type (B, I, anything else), give the gold tags'
mean log-probability and Brier score.

Student level (`students`): one student (configs/student.cfg) distilled from the three
`taughtnet_ner` teachers and one from the three stock `ner` teachers, scored on each corpus's
test split.

RUN: a run folder after `prepare` and `train-teachers` (its taughtnet_ner teachers, read only).
OUT: this benchmark's folder. It trains, with the same step budget as RUN's teachers, each
through the project's own commands:
    OUT/stock/teachers/C      a stock `ner` per corpus (configs/stock_ner.cfg, train-teachers)
    OUT/beam/teachers/C1      a `beam_ner` on the first corpus (the same config, factory beam_ner)
    OUT/seed1/teachers/C1     a second taughtnet_ner of the first corpus (configs/teacher.cfg, seed 1)
    OUT/union/ner             a stock `ner` on the union (labels of every corpus; each union doc
                              annotated for its own type only), selected on each devel doc's type
and keeps every teacher's devel rows in OUT/rows, so a rerun resumes where it stopped.
"""
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
from spacy.tokens import Span

from ..aggregate import aggregate_distributions
from ..atomic import atomic_path
from ..corpora import doc_entity_type, read_docbin
from ..decoding import biluo_targets, constrained_viterbi, tags_to_spans
from ..distill import combine
from ..evaluate import evaluate_corpus
from ..layout import RunLayout, best_model
from ..scorer import bio_tags, seqeval_scores
from ..teachers import (
    DEFAULT_SMOOTHING,
    Teacher,
    load_teachers,
    parse_spec,
    trained_teacher,
)
from .steps import run_step, stage_seconds
from .tables import pct

BATCH = 256


def run_folder(path: Path, run_root: Path, *, teachers: bool = False) -> Path:
    """A run folder sharing RUN's corpora (and with `teachers`, its teachers) by symlink."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("corpus", "teachers") if teachers else ("corpus",):
        if not (path / name).exists():
            (path / name).symlink_to((run_root / name).resolve(), target_is_directory=True)
    return path


def train(run_root: Path, out: Path, corpora: List[str], steps: int) -> Dict[str, Optional[float]]:
    """The stock `ner`, `beam_ner` and union `ner` teachers; their training wall times."""
    budget = ["--max-steps", str(steps), "--eval-frequency", "200"]
    stock = run_folder(out / "stock", run_root)
    run_step(["train-teachers", str(stock), "configs/stock_ner.cfg", "--corpora", " ".join(corpora), *budget])
    beam = run_folder(out / "beam", run_root)
    run_step(["train-teachers", str(beam), "configs/stock_ner.cfg", "--corpora", corpora[0], *budget,
         "--components.ner.factory", "beam_ner"])
    seed = run_folder(out / "seed1", run_root)  # a second taughtnet_ner of the first corpus
    run_step(["train-teachers", str(seed), "configs/teacher.cfg", "--corpora", corpora[0], *budget,
         "--system.seed", "1", "--training.seed", "1"])
    union = run_folder(out / "union", run_root)
    if not best_model(union / "ner").is_dir():
        # as `benchmark cnn` trains spaCy's ner on the union: each devel doc scored on its own type
        run_step(["train-student", str(union), "configs/stock_ner.cfg", "--no-teachers",
             "--output", str(union / "ner"), "--max-steps", str(steps), "--eval-frequency", "500",
             "--components.ner.scorer.@scorers", "spacy-taughtnet.ner_scorer.v1"])
    times = {f"ner {c}": stage_seconds(stock, f"teacher-{c}") for c in corpora}
    times[f"beam_ner {corpora[0]}"] = stage_seconds(beam, f"teacher-{corpora[0]}")
    times[f"taughtnet_ner {corpora[0]} seed 1"] = stage_seconds(seed, f"teacher-{corpora[0]}")
    times["ner union"] = stage_seconds(union, "ner")
    times.update({f"taughtnet_ner {c}": stage_seconds(run_root, f"teacher-{c}") for c in corpora})
    return times


def pipeline_teacher(path: Path, labels: Sequence[str], where: str) -> Teacher:
    """A `pipeline:` teacher giving its own labels, loaded as a specification loads it."""
    spec = parse_spec({"teachers": [{"pipeline": str(path), "labels": {label: label for label in labels}}]}, where)
    (teacher,), _ = load_teachers(spec, path)
    return teacher


class Rows:
    """Each teacher's rows over each devel split, computed once and kept in OUT/rows."""

    def __init__(self, out: Path, devel: Dict[str, list]):
        self.folder, self.devel, self.teachers = out / "rows", devel, {}
        timings = self.folder / "seconds.json"  # each teacher's time over each devel split
        self.seconds = json.loads(timings.read_text()) if timings.is_file() else {}

    def add(self, name: str, load) -> None:
        self.teachers[name] = load

    def teacher(self, name: str) -> Teacher:
        if not isinstance(self.teachers[name], Teacher):
            self.teachers[name] = self.teachers[name]()
        return self.teachers[name]

    def get(self, name: str, corpus: str) -> numpy.ndarray:
        path = self.folder / name.replace(" ", "_") / f"{corpus}.npy"
        if not path.is_file():
            teacher, docs = self.teacher(name), self.devel[corpus]
            start = time.perf_counter()
            rows = numpy.concatenate([r for i in range(0, len(docs), BATCH) for r in teacher.predict(docs[i:i + BATCH])])
            self.seconds[f"{name} on {corpus}"] = round(time.perf_counter() - start, 1)
            print(f"{name} on {corpus} devel: {self.seconds[f'{name} on {corpus}']} s", flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    numpy.save(f, rows)
            with atomic_path(self.folder / "seconds.json") as tmp:
                tmp.write_text(json.dumps(self.seconds, indent=2) + "\n")
        return numpy.load(path)


def score(global_rows: numpy.ndarray, labels: List[str], docs: list, entity_type: str) -> Dict:
    """Seqeval P/R/F1 of the rows' constrained Viterbi decoding on `entity_type`, and the gold
    tags' mean log-probability and Brier score on the rows folded onto that type."""
    bounds = numpy.cumsum([0] + [len(doc) for doc in docs])
    per_doc = [global_rows[bounds[i]:bounds[i + 1]] for i in range(len(docs))]
    paths = constrained_viterbi([numpy.log(numpy.maximum(biluo_targets(rows), 1e-12)) for rows in per_doc])
    y_true, y_pred = [], []
    for doc, path in zip(docs, paths):
        y_true.append(bio_tags(doc, types=[entity_type]))
        spans = [Span(doc, start, end, label=label) for start, end, label in tags_to_spans(path, labels)]
        y_pred.append(bio_tags(doc, spans=spans, types=[entity_type]))
    j = labels.index(entity_type)
    folded = global_rows[:, [2 * j, 2 * j + 1]].astype(numpy.float64)
    folded = numpy.concatenate([folded, 1.0 - folded.sum(axis=1, keepdims=True)], axis=1).clip(0.0, 1.0)
    gold = numpy.array([{"B": 0, "I": 1, "O": 2}[tag[0]] for tags in y_true for tag in tags])
    one_hot = numpy.eye(3)[gold]
    return {
        **seqeval_scores(y_true, y_pred),
        "log_prob": float(numpy.log(numpy.maximum(folded[numpy.arange(len(gold)), gold], 1e-12)).mean()),
        "brier": float(((folded - one_hot) ** 2).sum(axis=1).mean()),
    }


def naive_split(single: List[Optional[numpy.ndarray]], union: numpy.ndarray, normalize: str = "sum") -> numpy.ndarray:
    """The union teacher split into one independent expert per type (B-T, I-T, and the rest
    of its mass as O), each a factor of the same product as the multi-type rule's."""
    k = len(single)
    split = [numpy.stack([union[:, 2 * j], union[:, 2 * j + 1], 1.0 - union[:, 2 * j:2 * j + 2].sum(axis=1)], axis=1)
             for j in range(k)]
    return aggregate_distributions(single, normalize=normalize, joint=[([j], split[j]) for j in range(k)])


def devel_arms(run_root: Path, out: Path, corpora: List[str], joint: Optional[Path] = None) -> Tuple[List[Dict], Dict]:
    """Every arm's scores on every devel split it is measured on; each teacher's seconds over
    each devel split and the sharpness of its rows. joint: a probabilistic multi-type pipeline
    arm (v) is repeated with."""
    vocab = spacy.blank("en").vocab
    layout, stock, union_model = RunLayout(run_root), RunLayout(out / "stock"), best_model(out / "union" / "ner")
    devel = {c: read_docbin(layout.corpus(c, "dev"), vocab) for c in corpora}
    types = {c: doc_entity_type(devel[c][0]) for c in corpora}
    labels = [types[c] for c in corpora]
    first = corpora[0]
    rows = Rows(out, devel)
    for c in corpora:
        rows.add(f"taughtnet_ner {c}", lambda c=c: trained_teacher(layout.teacher_model(c)))
        rows.add(f"ner {c}", lambda c=c: pipeline_teacher(stock.teacher_model(c), [types[c]], f"ner {c}"))
    rows.add(f"beam_ner {first}", lambda: pipeline_teacher(RunLayout(out / "beam").teacher_model(first), [types[first]], "beam_ner"))
    rows.add("ner union", lambda: pipeline_teacher(union_model, labels, "ner union"))
    rows.add(f"taughtnet_ner {first} seed 1", lambda: trained_teacher(RunLayout(out / "seed1").teacher_model(first)))

    def aggregated(names: Sequence[str], corpus: str, merge: str = "mean") -> numpy.ndarray:
        teachers = [rows.teacher(n) for n in names]
        # the global columns (combine appends each type's own (B, I, O) after them)
        stored = combine(teachers, [rows.get(n, corpus) for n in names], labels, merge=merge, normalize="sum")
        return stored[:, :2 * len(labels) + 1]

    tn = [f"taughtnet_ner {c}" for c in corpora]
    results = []

    def arm_scores(arm: str, system: str, make, on: Sequence[str] = corpora, alone: bool = False) -> None:
        """alone: `make` gives the corpus's own teacher's rows, over its type only."""
        for corpus in on:
            start = time.perf_counter()
            row = {"arm": arm, "system": system, "corpus": corpus, "entity_type": types[corpus],
                   **score(make(corpus), [types[corpus]] if alone else labels, devel[corpus], types[corpus])}
            results.append(row)
            print(f"{arm:5} {system:42} {corpus:18} P {row['precision'] * 100:5.2f} R {row['recall'] * 100:5.2f} "
                  f"F1 {row['f1'] * 100:5.2f} logp {row['log_prob']:.4f} brier {row['brier']:.4f} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)

    arm_scores("i", "taughtnet_ner x3", lambda c: aggregated(tn, c))
    arm_scores("ii", f"ner x3 (one-hot, smoothing {DEFAULT_SMOOTHING:g})", lambda c: aggregated([f"ner {x}" for x in corpora], c))
    # references: each corpus's own teacher, its rows alone (no other teacher's mass)
    arm_scores("i", "own taughtnet_ner alone (not aggregated)", lambda c: rows.get(f"taughtnet_ner {c}", c), alone=True)
    arm_scores("ii", "own ner alone (not aggregated)", lambda c: rows.get(f"ner {c}", c), alone=True)
    others = tn[1:]
    for system in ("taughtnet_ner", "ner", "beam_ner"):
        arm_scores("iii", f"{types[first]}: {system}", lambda c, s=system: aggregated([f"{s} {first}", *others], c), on=[first])
    pair = [f"taughtnet_ner {first}", f"ner {first}", *others]
    arm_scores("iv", f"{types[first]}: taughtnet_ner alone", lambda c: aggregated(tn, c))
    arm_scores("iv", f"{types[first]}: ner alone", lambda c: aggregated([f"ner {first}", *others], c))
    for merge in ("mean", "product"):
        arm_scores("iv", f"{types[first]}: taughtnet_ner + ner, {merge}", lambda c, m=merge: aggregated(pair, c, m))
    seeds = [f"taughtnet_ner {first}", f"taughtnet_ner {first} seed 1", *others]
    arm_scores("iv", f"{types[first]}: taughtnet_ner seed 1 alone", lambda c: aggregated(seeds[1:], c))
    for merge in ("mean", "product"):
        arm_scores("iv", f"{types[first]}: taughtnet_ner seeds 0 + 1, {merge}", lambda c, m=merge: aggregated(seeds, c, m))
    arm_scores("v", "taughtnet_ner x3 (no multi-type teacher)", lambda c: aggregated(tn, c))
    arm_scores("v", "union ner alone", lambda c: aggregated(["ner union"], c))
    arm_scores("v", "taughtnet_ner x3 + union ner: multi-type rule", lambda c: aggregated([*tn, "ner union"], c))
    arm_scores("v", "taughtnet_ner x3 + union ner: naive split", lambda c: naive_split([rows.get(n, c) for n in tn], rows.get("ner union", c)))
    if joint is not None:
        rows.add("joint teacher", lambda: pipeline_teacher(joint, labels, "joint teacher"))
        arm_scores("v", "JOINT alone", lambda c: aggregated(["joint teacher"], c))
        arm_scores("v", "taughtnet_ner x3 + JOINT: multi-type rule", lambda c: aggregated([*tn, "joint teacher"], c))
        arm_scores("v", "taughtnet_ner x3 + JOINT: naive split",
                lambda c: naive_split([rows.get(n, c) for n in tn], rows.get("joint teacher", c)))
    stats: Dict[str, Dict[str, Dict]] = {}
    for name in rows.teachers:
        for corpus in corpora:
            if f"{name} on {corpus}" in rows.seconds:
                stats.setdefault(name, {})[corpus] = {"seconds": rows.seconds[f"{name} on {corpus}"],
                                                      **sharpness(rows.get(name, corpus))}
    return results, stats


def sharpness(rows: numpy.ndarray) -> Dict[str, Optional[float]]:
    """Shares of tokens where a teacher's top probability is >= 0.99 ("certain") and, for a
    multi-type teacher, where a second type holds more than 0.1 of its mass ("two_types")."""
    k = (rows.shape[1] - 1) // 2
    per_type = numpy.sort(rows[:, 0:2 * k:2] + rows[:, 1:2 * k:2], axis=1)
    return {"certain": float((rows.max(axis=1) >= 0.99).mean()),
            "two_types": float((per_type[:, -2] > 0.1).mean()) if k > 1 else None}


def students(run_root: Path, out: Path, corpora: List[str], steps: int) -> List[Dict]:
    """Students of the taughtnet_ner teachers and of the stock ner teachers, on test."""
    arms = {"taughtnet_ner teachers": run_folder(out / "student_taughtnet", run_root, teachers=True),
            "ner teachers (one-hot)": out / "stock"}
    spec = out / "stock" / "teachers.yml"
    types = {c: doc_entity_type(read_docbin(RunLayout(run_root).corpus(c, "dev"), spacy.blank("en").vocab)[0]) for c in corpora}
    spec.write_text("teachers:\n" + "".join(
        f"  - pipeline: teachers/{c}/model-best\n    labels: {{{types[c]}: {types[c]}}}\n" for c in corpora))
    rows = []
    for arm, root in arms.items():
        layout = RunLayout(root)
        if not (layout.distributions("train") / "manifest.json").is_file():
            run_step(["distill-teachers", str(root), "--corpora", " ".join(corpora),
                 *(["--teachers", str(spec)] if root == out / "stock" else [])])
        if not layout.student_model.is_dir():
            run_step(["train-student", str(root), "configs/student.cfg", "--max-steps", str(steps)])
        nlp = spacy.load(layout.student_model)
        for c in corpora:
            row = {"system": f"student of {arm}", **evaluate_corpus(nlp, layout.corpus(c, "test")), "corpus": c}
            row["train_seconds"] = stage_seconds(root, "student")
            rows.append(row)
            print(f"{row['system']:36} {c:18} P {row['precision'] * 100:5.2f} R {row['recall'] * 100:5.2f} F1 {row['f1'] * 100:5.2f}", flush=True)
    return rows


def measure(run_root: Path, out: Path, corpora: List[str], steps: int, joint_teacher: Optional[Path],
            student_steps: Optional[int]) -> Dict:
    """Train the teachers, score every arm on devel and, with `student_steps`, train and test
    the two students; the results as benchmarks/teachers.json holds them."""
    start = time.perf_counter()
    command = f"python -m spacy_taughtnet benchmark teachers RUN OUT --corpora \"{' '.join(corpora)}\" --steps {steps}"
    if joint_teacher:
        command += " --joint-teacher JOINT"
    if student_steps:
        command += f" --students --student-steps {student_steps}"
    results = {"command": command + " --report", "corpora": corpora, "steps": steps, "cpus": os.cpu_count(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}
    results["train_seconds"] = train(run_root, out, corpora, steps)
    results["devel"], results["teachers_on_devel"] = devel_arms(run_root, out, corpora, joint_teacher)
    results["joint_teacher"] = str(joint_teacher) if joint_teacher else None
    if student_steps:
        results["student_steps"] = student_steps
        results["students"] = students(run_root, out, corpora, student_steps)
    results["invocation_seconds"] = round(time.perf_counter() - start, 1)  # the last run only, when resumed
    return results


def teacher_cells(stats: Optional[Dict]) -> str:
    if stats is None:
        return "-"
    two = "-" if stats["two_types"] is None else f"{stats['two_types'] * 100:.1f}%"
    return f"{stats['seconds']} / {stats['certain'] * 100:.1f}% / {two}"


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/teachers.json: the tables, each naming its command."""
    corpora, command = results["corpora"], results["command"]
    lines = [
        "## Teachers beyond taughtnet_ner (issue 16)", "",
        f"Every figure below comes from `{command}` ({results['cpus']} CPU cores shared with other work, "
        f"`OMP_NUM_THREADS={results['omp_num_threads']}`), raw numbers in `benchmarks/teachers.json`. RUN is a run folder of `prepare` and "
        "`train-teachers configs/teacher.cfg --max-steps " + str(results["steps"]) + "` on the three corpora (its "
        "taughtnet_ner teachers are reused; their training times are RUN's).", "",
        "### Teachers trained", "",
        f"Same tok2vec (CNN, width 96, depth 4) and budget ({results['steps']} steps, the best devel checkpoint) for every "
        "teacher: `taughtnet_ner` (configs/teacher.cfg), spaCy's greedy `ner` and its `beam_ner` (beam width 32, "
        "spaCy's default) from configs/stock_ner.cfg; `ner union` is one stock `ner` trained on the union of the three "
        "train sets, where each sentence is annotated for its own corpus's type only (the others are O), selected on "
        "each devel doc's own type.", "",
        "| teacher | training wall time (s) |", "|---|---|",
        *(f"| {name} | {s if s is not None else 'n/a'} |" for name, s in results["train_seconds"].items()), "",
        "### Soft labels on devel (no student)", "",
        f"Each teacher over each devel split: seconds (one process, batches of {BATCH} docs); certain: the share of "
        "tokens where its top probability is >= 0.99; for a multi-type teacher, two types: the share where a second "
        "type holds more than 0.1 of its mass.", "",
        "| teacher | " + " | ".join(f"{c} s / certain / two types" for c in corpora) + " |", "|---|" + "---|" * len(corpora),
        *(f"| {name} | " + " | ".join(teacher_cells(results["teachers_on_devel"][name].get(c)) for c in corpora) + " |"
          for name in results["teachers_on_devel"]), "",
        "Each arm's teachers run over each corpus's devel split; their rows are merged and aggregated as `distill-teachers` "
        "does (`normalize sum`), decoded with the package's constrained Viterbi (the BILUO targets a student is taught) "
        "and scored with seqeval (entity level, exact match) on that corpus's own type. log p: the gold tags' mean "
        "log-probability (nats/token, each probability clipped at 1e-12) and Brier: the mean Brier score, both on the "
        "rows folded onto the corpus's type (B, I, anything else); higher log p and lower Brier are better.", "",
    ]
    titles = {
        "i": "(i) our three taughtnet_ner teachers, (ii) three stock ner teachers (one-hot, smoothing 0.1)",
        "iii": f"(iii) the {corpora[0]} teacher: taughtnet_ner vs greedy ner (one-hot) vs beam_ner (the other types: taughtnet_ner)",
        "iv": f"(iv) two teachers of one type ({corpora[0]}: taughtnet_ner + stock ner, or two taughtnet_ner seeds) "
              "merged by mean or product, vs one",
        "v": "(v) a multi-type teacher (union ner" + (", or JOINT" if results.get("joint_teacher") else "")
             + ") with the three taughtnet_ner teachers: the multi-type rule vs the naive per-type split",
    }
    groups = {"i": ("i", "ii"), "iii": ("iii",), "iv": ("iv",), "v": ("v",)}
    rows = results["devel"]
    for key, arms in groups.items():
        mine = [r for r in rows if r["arm"] in arms]
        on = [c for c in corpora if any(r["corpus"] == c for r in mine)]
        systems = list(dict.fromkeys(r["system"] for r in mine))
        lines += [f"#### {titles[key]}", "",
                  "| system | " + " | ".join(f"{c} P / R / F1" for c in on) + " | " + " | ".join(f"{c} log p / Brier" for c in on)
                  + (" | macro F1 |" if len(on) > 1 else " |"),
                  "|---|" + "---|" * (2 * len(on) + (len(on) > 1))]
        for system in systems:
            cells = {r["corpus"]: r for r in mine if r["system"] == system}
            line = f"| {system} | " + " | ".join(
                f"{pct(cells[c]['precision'])} / {pct(cells[c]['recall'])} / **{pct(cells[c]['f1'])}**" for c in on)
            line += " | " + " | ".join(f"{cells[c]['log_prob']:.4f} / {cells[c]['brier']:.4f}" for c in on)
            if len(on) > 1:
                line += f" | {pct(sum(cells[c]['f1'] for c in on) / len(on))}"
            lines.append(line + " |")
        lines.append("")
    if results.get("students"):
        lines += ["### Students (test)", "",
                  f"Students of configs/student.cfg trained {results['student_steps']} steps each (the default is 10000), "
                  "the same for both arms, on the union with each arm's distributions (`distill-teachers`, then "
                  "`train-student`); test split of each corpus on its own type.", "",
                  "| student | " + " | ".join(f"{c} P / R / F1" for c in corpora) + " | macro F1 | training (s) |",
                  "|---|" + "---|" * (len(corpora) + 2)]
        for system in dict.fromkeys(r["system"] for r in results["students"]):
            cells = {r["corpus"]: r for r in results["students"] if r["system"] == system}
            lines.append(f"| {system} | " + " | ".join(
                f"{pct(cells[c]['precision'])} / {pct(cells[c]['recall'])} / **{pct(cells[c]['f1'])}**" for c in corpora)
                + f" | {pct(sum(cells[c]['f1'] for c in corpora) / len(corpora))} | {cells[corpora[0]]['train_seconds']} |")
    return lines


