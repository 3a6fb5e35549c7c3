"""The CNN default configs: teachers, the TaughtNet student of `all` and one trained on the
labelled union only, the naive multi-type baseline and spaCy's stock `ner` on the union, on each corpus's test split;
throughput, size and memory of the student against the teachers run one after another.

Run after `spacy project run all`: it reuses that run's corpora, teachers, distributions and
student, and trains the other systems under ROOT/benchmark/ with the same budget (each kept,
so a rerun after a failure resumes where it stopped).
"""
import multiprocessing
import platform
import time
from pathlib import Path
from typing import Dict, List, Optional

from ..layout import RunLayout, best_model
from .speed import (
    SPEED_PASSES,
    aggregation_seconds,
    annotate_throughput,
    size_mb,
    throughput,
)
from .steps import run_step, stage_seconds
from .tables import score_tables, summarise, target, target_lines, wall_time_lines

SYSTEMS = ("teacher", "student", "student_union", "naive", "spacy_ner")
SHOWN = {"teacher": "teacher", "student": "student (`all`)", "student_union": "student, union only",
         "naive": "naive union", "spacy_ner": "spaCy `ner` on the union"}
ANNOTATE_BATCH = 64


def train_systems(
    root: Path, corpora: List[str], steps: int, eval_frequency: int, init_tok2vec: Optional[Path]
) -> Dict[str, Path]:
    """The union-trained systems; the `all` run's student is one of the two students. They
    train on the labelled union only, from `init_tok2vec` (the run's pretrained tok2vec, as
    its teachers and student did; None: none)."""
    layout = RunLayout(root)
    models = {"student": layout.student_model, "student_union": best_model(layout.benchmark("student_union"))}
    budget = union_budget(steps, eval_frequency, init_tok2vec)
    if not models["student_union"].is_dir():
        run_step(["train-student", str(root), "configs/student.cfg", "--output", str(layout.benchmark("student_union")), *budget])
    models["naive"] = train_naive(root, budget)
    models["spacy_ner"] = train_stock_ner(root, budget)
    return models


def pretrained_tok2vec(root: Path) -> Optional[Path]:
    """The run's pretrained tok2vec, where its teachers and student started (None: none)."""
    weights = RunLayout(root).pretrain_weights
    return weights if weights.is_file() else None


def union_budget(steps: int, eval_frequency: int, init_tok2vec: Optional[Path]) -> List[str]:
    """train-student's options for a union-trained system: its steps, and the weights it starts
    from (None: none)."""
    return ["--max-steps", str(steps), "--eval-frequency", str(eval_frequency),
            *(["--init-tok2vec", str(init_tok2vec)] if init_tok2vec else [])]


def train_naive(root: Path, budget: List[str]) -> Path:
    """The naive multi-type baseline, trained if missing: the student's config on the labelled
    union's gold alone (no teachers: each corpus's other types are O), in ROOT/benchmark/naive."""
    output = RunLayout(root).benchmark("naive")
    if not best_model(output).is_dir():
        run_step(["train-student", str(root), "configs/student.cfg", "--no-teachers", "--output", str(output), *budget])
    return best_model(output)


def train_stock_ner(root: Path, budget: List[str]) -> Path:
    """spaCy's stock `ner` on the labelled union's gold, trained if missing, in
    ROOT/benchmark/spacy_ner: one softmax over every type, so each corpus's other types,
    marked O, collapse its predictions of them. The same training step as the student's,
    selected on each devel doc's own type, as the other systems are."""
    output = RunLayout(root).benchmark("spacy_ner")
    if not best_model(output).is_dir():
        run_step(["train-student", str(root), "configs/stock_ner.cfg", "--no-teachers", "--output", str(output),
                  *budget, "--components.ner.scorer.@scorers", "spacy-taughtnet.ner_scorer.v1"])
    return best_model(output)


def measure(root: Path, corpora: List[str], steps: int, eval_frequency: int, batch_size: int) -> Dict:
    """Train what is missing, score every system on each test split, time the student and
    the teachers; the results as benchmarks/cnn.json holds them."""
    import spacy

    from ..evaluate import evaluate_corpus

    start = time.perf_counter()
    layout = RunLayout(root)
    init_tok2vec = pretrained_tok2vec(root)
    models = train_systems(root, corpora, steps, eval_frequency, init_tok2vec)
    tests = [layout.corpus(c, "test") for c in corpora]
    teachers = layout.teacher_models(corpora)
    rows = [{"system": "teacher", **evaluate_corpus(spacy.load(teacher), test), "corpus": corpus}
            for corpus, teacher, test in zip(corpora, teachers, tests)]
    for system in SYSTEMS[1:]:
        nlp = spacy.load(models[system])
        rows += [{"system": system, **evaluate_corpus(nlp, test), "corpus": corpus} for corpus, test in zip(corpora, tests)]
    student = models["student"]
    speed = {"student": throughput([student], tests, batch_size), "teachers": throughput(teachers, tests, batch_size)}
    stages = [f"teacher-{c}" for c in corpora] + ["distill-train", "student", "student_union", "naive", "spacy_ner"]
    return {
        "rows": rows,
        "words_per_second": {k: v["words_per_second"] for k, v in speed.items()},
        "peak_rss_mb": {k: v["peak_rss_mb"] for k, v in speed.items()},
        "size_mb": {"student": size_mb([student]), "teachers": size_mb(teachers)},
        "annotate": annotate_throughput(student, tests, ANNOTATE_BATCH, layout.benchmark_folder),
        "aggregate_1M_tokens_3_teachers_seconds": aggregation_seconds(),
        "wall_seconds": {stage: stage_seconds(root, stage) for stage in stages},
        "benchmark_seconds": round(time.perf_counter() - start, 1),
        "setup": {
            "corpora": corpora, "steps_union_systems": steps, "eval_frequency": eval_frequency,
            "batch_size": batch_size, "seed": 0,
            "init_tok2vec": str(init_tok2vec) if init_tok2vec else None,
            "machine": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": multiprocessing.cpu_count(),
            "python": platform.python_version(), "spacy": spacy.__version__,
            "command": f"python -m spacy_taughtnet benchmark cnn {root} --corpora \"{' '.join(corpora)}\"",
        },
    }


def speedup(results: Dict) -> float:
    return results["words_per_second"]["student"] / results["words_per_second"]["teachers"]


def targets(results: Dict) -> List[Dict]:
    scores = summarise(results["rows"], SYSTEMS)
    f1 = scores["test_f1"]
    out = []
    for corpus in results["setup"]["corpora"]:
        gap = (f1["student"][corpus] - f1["teacher"][corpus]) * 100
        out.append(target(f"student F1 >= teacher F1 - 0.5 on {corpus}", f"{gap:+.2f} points", gap >= -0.5))
    gain = (scores["macro_f1"]["student"] - scores["macro_f1"]["naive"]) * 100
    out.append(target("student macro F1 >= naive macro F1 + 1.0", f"{gain:+.2f} points", gain >= 1.0))
    out.append(target("student throughput >= 2.8x the three teachers", f"{speedup(results):.2f}x", speedup(results) >= 2.8))
    return out


def chart(results: Dict, path: Path) -> None:
    """benchmarks/f1_by_corpus.png: test F1 by corpus and system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    corpora, f1 = results["setup"]["corpora"], summarise(results["rows"], SYSTEMS)["test_f1"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(SYSTEMS)
    for i, system in enumerate(SYSTEMS):
        bars = ax.bar([x + i * width for x in range(len(corpora))], [f1[system][c] * 100 for c in corpora], width, label=system)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks([x + width * (len(SYSTEMS) - 1) / 2 for x in range(len(corpora))], corpora)
    ax.set_ylabel("test F1 (seqeval, own type)")
    ax.set_ylim(40, 105)
    fig.legend(*ax.get_legend_handles_labels(), ncol=len(SYSTEMS), fontsize=8, loc="lower center")
    ax.set_title("Test F1 by corpus and system, one run (CPU default configs); python -m spacy_taughtnet benchmark cnn", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/cnn.json (built as transformers.section is: alike in shape,
    each its own text)."""
    setup, corpora = results["setup"], results["setup"]["corpora"]
    speed, annotate = results["words_per_second"], results["annotate"]
    lines = [
        "## CNN default configs on the CPU",
        "",
        f"Produced by `{setup['command']}` after `spacy project run all`",
        f"(CPU default configs, {setup['cpus']} CPU cores, {setup['machine']}); every figure is in `benchmarks/cnn.json`.",
        "The `all` student learns from the labelled union and the transfer text; the union-only student, "
        "naive and spacy_ner train on the labelled union only"
        + (f", from the run's pretrained tok2vec (`{setup['init_tok2vec']}`)." if setup["init_tok2vec"] else ".")
        + " The two students differ in their data, not in the aggregation: their per-type heads learn from each "
        "type's own teacher columns, which the aggregation's normaliser (sum or softmax) does not change.",
        "",
        *score_tables(results["rows"], corpora, SHOWN),
        "", "![Test F1 by corpus and system, one run](benchmarks/f1_by_corpus.png)", "",
        *target_lines(targets(results)),
        "", "### Speed, size, memory", "",
        f"The three test splits together, one process, batch size {setup['batch_size']}, each model's fastest of {SPEED_PASSES} passes:", "",
        "| | words/s | size on disk (MB) | peak RSS (MB) |", "|---|---|---|---|",
        f"| student (one pipeline, all types) | {speed['student']:.0f} | {results['size_mb']['student']:.1f} | {results['peak_rss_mb']['student']:.0f} |",
        f"| three teachers, one after another | {speed['teachers']:.0f} | {results['size_mb']['teachers']:.1f} | {results['peak_rss_mb']['teachers']:.0f} |",
        "", f"Speed-up: {speedup(results):.2f}x.", "",
        "### `annotate` throughput", "",
        f"`python -m spacy_taughtnet annotate` with the student on the three test splits as plain text "
        f"({annotate['docs']} documents, {annotate['words']} words), JSONL out, batch size {ANNOTATE_BATCH}:", "",
        "| processes | docs/s | words/s |", "|---|---|---|",
        *(f"| {n} | {annotate[n]['docs_per_second']:.0f} | {annotate[n]['words_per_second']:.0f} |" for n in ("1", "2")),
        "", f"Scaling from 1 to 2 processes: {annotate['2']['docs_per_second'] / annotate['1']['docs_per_second']:.2f}x.", "",
        f"`aggregate_distributions` on 1,000,000 tokens from 3 teachers: {results['aggregate_1M_tokens_3_teachers_seconds']:.2f} s (best of 3).", "",
        *wall_time_lines(results["wall_seconds"]),
    ]
    return lines
