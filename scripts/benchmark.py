"""Benchmark: teachers, TaughtNet students (sum and softmax aggregation), the naive
multi-type baseline and spaCy's stock `ner` on the union, on each corpus's test split;
throughput, size and memory of the student against the teachers run one after another.

Run after `spacy project run all` (it reuses that run's corpora, teachers, distributions
and student, and trains the other systems under ROOT/benchmark/ with the same budget):

    python scripts/benchmark.py training --corpora "NCBI-disease-IOB BC5CDR-chem-IOB BC2GM-IOB"

Writes benchmarks/results.json, benchmarks/f1_by_corpus.png and benchmarks/cnn.md, then
rebuilds BENCHMARKS.md from the section files of benchmarks/ (REPORT_PARTS: the generated
cnn.md and transformers.md, from scripts/benchmark_transformers.py, and the hand-written
intro and findings). Each trained system is kept, so a rerun after a failure resumes where
it stopped. After editing a section file, rebuild the report alone:

    python scripts/benchmark.py assemble
"""
import argparse
import json
import multiprocessing
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import spacy

from spacy_taughtnet.atomic import atomic_path
from spacy_taughtnet.distributions import MANIFEST, TeacherDistributions
from spacy_taughtnet.evaluate import evaluate_corpus, format_table
from spacy_taughtnet.layout import RunLayout, best_model
from spacy_taughtnet.workflow import parse_corpora

PROJECT = Path(__file__).resolve().parent.parent
SYSTEMS = ("teacher", "student_sum", "student_softmax", "naive", "spacy_ner")
# throughput: each model's fastest of this many passes over the docs
SPEED_PASSES = 3


def run(args: List[str]) -> None:
    print("$ " + " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=PROJECT)


def timing(root: Path, stage: str) -> float:
    path = RunLayout(root).timings(stage)
    return json.loads(path.read_text())["seconds"] if path.is_file() else None


def train_systems(
    root: Path, corpora: List[str], steps: int, eval_frequency: int, init_tok2vec: Optional[Path]
) -> Dict[str, Path]:
    """The union-trained systems; the `all` run's student is one of the two students. They
    train on the labelled union only, from `init_tok2vec` (the run's pretrained tok2vec, as
    its teachers and student did; None: none)."""
    layout = RunLayout(root)
    all_normalize = TeacherDistributions(layout.distributions("train")).normalize
    models = {f"student_{all_normalize}": layout.student_model}
    budget = ["--max-steps", str(steps), "--eval-frequency", str(eval_frequency)]
    if init_tok2vec:
        budget += ["--init-tok2vec", str(init_tok2vec)]
    other = "softmax" if all_normalize == "sum" else "sum"
    distributions = layout.distributions(f"train_{other}")
    if not (distributions / MANIFEST).is_file():
        run(["-m", "spacy_taughtnet", "distill-teachers", str(root), "--corpora", " ".join(corpora),
             "--normalize", other, "--output", str(distributions)])
    models[f"student_{other}"] = best_model(layout.benchmark(f"student_{other}"))
    if not models[f"student_{other}"].is_dir():
        run(["-m", "spacy_taughtnet", "train-student", str(root), "configs/student.cfg", "--distributions",
             str(distributions), "--output", str(layout.benchmark(f"student_{other}")), *budget])
    models["naive"] = best_model(layout.benchmark("naive"))
    if not models["naive"].is_dir():
        run(["-m", "spacy_taughtnet", "train-student", str(root), "configs/student.cfg", "--no-teachers",
             "--output", str(layout.benchmark("naive")), *budget])
    models["spacy_ner"] = best_model(layout.benchmark("spacy_ner"))
    if not models["spacy_ner"].is_dir():
        # the same training step, with spaCy's stock ner config; selected on each devel
        # doc's own type, as for the other systems
        run(["-m", "spacy_taughtnet", "train-student", str(root), "configs/stock_ner.cfg", "--no-teachers",
             "--output", str(layout.benchmark("spacy_ner")), *budget,
             "--components.ner.scorer.@scorers", "spacy-taughtnet.ner_scorer.v1"])
    return models


def _throughput(model_paths: List[str], docbins: List[str], batch_size: int, limit: int, threads: int, repeats: int, queue) -> None:
    """In a fresh process: words/s of running the models one after another (over the first
    `limit` docs of each DocBin, 0: all; each model's fastest of `repeats` passes, as timeit
    does, since a shared machine only ever slows a pass down), peak RSS. threads > 0 caps
    torch's threads."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from spacy.tokens import Doc

    from spacy_taughtnet.corpora import read_docbin

    pipelines = [spacy.load(path) for path in model_paths]
    words = [[t.text for t in doc] for path in docbins for doc in read_docbin(path, pipelines[0].vocab)[: limit or None]]
    seconds = 0.0
    for nlp in pipelines:
        docs = [Doc(nlp.vocab, words=w) for w in words]
        list(nlp.pipe(docs[:200], batch_size=batch_size))  # warm-up
        passes = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in nlp.pipe(docs, batch_size=batch_size):
                pass
            passes.append(time.perf_counter() - start)
        seconds += min(passes)
    n_words = sum(len(w) for w in words)
    queue.put({"words": n_words, "seconds": seconds, "words_per_second": n_words / seconds, "peak_rss_mb": _peak_rss_mb()})


def _peak_rss_mb() -> float:
    """This process's peak resident memory. On Linux VmHWM, since ru_maxrss of a spawned
    process starts from its parent's peak."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(model_paths: List[Path], docbins: List[Path], batch_size: int, limit: int = 0, threads: int = 0, repeats: int = SPEED_PASSES) -> Dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_throughput, args=([str(p) for p in model_paths], [str(p) for p in docbins], batch_size, limit, threads, repeats, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def annotate_throughput(model: Path, docbins: List[Path], batch_size: int, work: Path) -> Dict:
    """Docs/s and words/s of `annotate` (plain text in, JSONL out) with 1 and 2 processes."""
    from spacy_taughtnet.annotate import annotate_file, load_pipeline
    from spacy_taughtnet.corpora import read_docbin

    nlp = load_pipeline(str(model))
    texts = [doc.text for path in docbins for doc in read_docbin(path, nlp.vocab)]
    n_words = sum(len(text.split()) for text in texts)
    source = work / "annotate_input.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf8")
    out = {}
    for n_process in (1, 2):
        target = work / f"annotate_{n_process}.jsonl"
        start = time.perf_counter()
        annotate_file(nlp, source, target, batch_size=batch_size, n_process=n_process, overwrite=True, progress=False)
        seconds = time.perf_counter() - start
        out[str(n_process)] = {"docs_per_second": len(texts) / seconds, "words_per_second": n_words / seconds, "seconds": seconds}
    out["docs"], out["words"] = len(texts), n_words
    out["scaling_2_vs_1"] = out["2"]["docs_per_second"] / out["1"]["docs_per_second"]
    return out


def aggregation_seconds(n_tokens: int = 1_000_000, k: int = 3) -> float:
    """Wall time of aggregate_distributions for n_tokens from k teachers (best of 3)."""
    import numpy

    from spacy_taughtnet import aggregate_distributions

    rng = numpy.random.default_rng(0)
    teachers = [rng.dirichlet(numpy.ones(3), size=n_tokens).astype(numpy.float32) for _ in range(k)]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        aggregate_distributions(teachers)
        times.append(time.perf_counter() - start)
    return min(times)


def size_mb(paths: List[Path]) -> float:
    return sum(f.stat().st_size for p in paths for f in p.rglob("*") if f.is_file()) / 2**20


def chart(results: Dict, corpora: List[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(SYSTEMS)
    for i, system in enumerate(SYSTEMS):
        values = [results["test_f1"][system][c] * 100 for c in corpora]
        bars = ax.bar([x + i * width for x in range(len(corpora))], values, width, label=system)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks([x + width * (len(SYSTEMS) - 1) / 2 for x in range(len(corpora))], corpora)
    ax.set_ylabel("test F1 (seqeval, own type)")
    ax.set_ylim(40, 105)
    fig.legend(*ax.get_legend_handles_labels(), ncol=len(SYSTEMS), fontsize=8, loc="lower center")
    ax.set_title("Entity-level F1 by corpus and system (CPU default configs)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="run folder of `spacy project run all`")
    parser.add_argument("--corpora", required=True)
    parser.add_argument("--steps", type=int, default=10000, help="training steps of each union-trained system")
    parser.add_argument("--eval-frequency", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks")
    parser.add_argument("--report", type=Path, default=PROJECT / "BENCHMARKS.md")
    args = parser.parse_args()
    root, corpora = args.root, parse_corpora(args.corpora)
    start = time.perf_counter()
    layout = RunLayout(root)
    init_tok2vec = layout.pretrain_weights if layout.pretrain_weights.is_file() else None
    models = train_systems(root, corpora, args.steps, args.eval_frequency, init_tok2vec)
    tests = [layout.corpus(c, "test") for c in corpora]

    rows = []
    for corpus, teacher, test in zip(corpora, layout.teacher_models(corpora), tests):
        rows.append({"system": "teacher", **evaluate_corpus(spacy.load(teacher), test), "corpus": corpus})
    for system in SYSTEMS[1:]:
        nlp = spacy.load(models[system])
        for corpus, test in zip(corpora, tests):
            rows.append({"system": system, **evaluate_corpus(nlp, test), "corpus": corpus})
    results = summarise(rows, SYSTEMS)

    student = models["student_sum"]
    teachers = layout.teacher_models(corpora)
    speed = {"student": throughput([student], tests, args.batch_size),
             "teachers": throughput(teachers, tests, args.batch_size)}
    results["words_per_second"] = {k: v["words_per_second"] for k, v in speed.items()}
    results["speedup"] = speed["student"]["words_per_second"] / speed["teachers"]["words_per_second"]
    results["peak_rss_mb"] = {k: v["peak_rss_mb"] for k, v in speed.items()}
    results["size_mb"] = {"student": size_mb([student]), "teachers": size_mb(teachers)}
    results["annotate"] = annotate_throughput(student, tests, 64, layout.benchmark_folder)
    results["aggregate_1M_tokens_3_teachers_seconds"] = aggregation_seconds()
    stages = [f"teacher-{c}" for c in corpora] + ["distill-train", "student", "distill-train_softmax", "student_softmax", "naive", "spacy_ner"]
    results["wall_seconds"] = {stage: timing(root, stage) for stage in stages}
    results["benchmark_seconds"] = round(time.perf_counter() - start, 1)
    results["setup"] = {
        "corpora": corpora, "steps_union_systems": args.steps, "eval_frequency": args.eval_frequency,
        "batch_size": args.batch_size, "seed": 0,
        "init_tok2vec": str(init_tok2vec) if init_tok2vec else None,
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpus": multiprocessing.cpu_count(),
        "python": platform.python_version(), "spacy": spacy.__version__,
        "command": f"python scripts/benchmark.py {root} --corpora \"{' '.join(corpora)}\"",
    }
    results["targets"] = targets(results, corpora)

    args.output.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.output / "results.json") as tmp:
        tmp.write_text(json.dumps({"rows": rows, **results}, indent=2) + "\n")
    chart(results, corpora, args.output / "f1_by_corpus.png")
    with atomic_path(args.output / "cnn.md") as tmp:
        tmp.write_text(report(results, rows, corpora))
    assemble_report(args.output, args.report)
    print(format_table(rows, ("system", "corpus", "precision", "recall", "f1")))
    for target in results["targets"]:
        print(f"{'PASS' if target['pass'] else 'MISS'}  {target['target']}: {target['measured']}")


# BENCHMARKS.md, section by section: the hand-written introduction, then each generated part
# (this script's cnn.md, benchmark_transformers.py's transformers.md) followed by its
# hand-written findings. A part that does not exist yet is left out.
REPORT_PARTS = ("intro.md", "cnn.md", "cnn_findings.md", "accuracy.md", "seeds.md", "transformers.md", "transformers_findings.md", "ray.md", "teachers.md")


def assemble_report(output: Path, report_path: Path) -> None:
    """Write BENCHMARKS.md from the parts in `output`. The introduction holds the one `#`
    title; every other part's headings move one level down, so its own title becomes a
    section of the report."""
    parts = [output / name for name in REPORT_PARTS if (output / name).is_file()]
    text = "\n".join(
        (part.read_text() if part.name == REPORT_PARTS[0] else demote_headings(part.read_text())).rstrip("\n") + "\n"
        for part in parts
    )
    with atomic_path(report_path) as tmp:
        tmp.write_text(text)


def demote_headings(markdown: str) -> str:
    """Markdown with every ATX heading one level deeper (`#` -> `##`), code blocks untouched."""
    lines, in_code = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        lines.append("#" + line if not in_code and re.match(r"#{1,5} ", line) else line)
    return "\n".join(lines) + "\n"


def assemble_cli() -> None:
    parser = argparse.ArgumentParser(description="Rebuild BENCHMARKS.md from the section files in benchmarks/ (no benchmark is run)")
    parser.add_argument("command", choices=["assemble"])
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks", help="folder of the section files")
    parser.add_argument("--report", type=Path, default=PROJECT / "BENCHMARKS.md")
    args = parser.parse_args()
    assemble_report(args.output, args.report)
    print(f"{args.report}: {', '.join(name for name in REPORT_PARTS if (args.output / name).is_file())}")


def targets(results: Dict, corpora: List[str]) -> List[Dict]:
    f1 = results["test_f1"]
    out = []
    for corpus in corpora:
        gap = (f1["student_sum"][corpus] - f1["teacher"][corpus]) * 100
        out.append({"target": f"student F1 >= teacher F1 - 0.5 on {corpus}", "measured": f"{gap:+.2f} points", "pass": bool(gap >= -0.5)})
    gain = (results["macro_f1"]["student_sum"] - results["macro_f1"]["naive"]) * 100
    out.append({"target": "student macro F1 >= naive macro F1 + 1.0", "measured": f"{gain:+.2f} points", "pass": bool(gain >= 1.0)})
    out.append({"target": "student throughput >= 2.8x the three teachers", "measured": f"{results['speedup']:.2f}x", "pass": bool(results["speedup"] >= 2.8)})
    return out


def summarise(rows: List[Dict], systems) -> Dict:
    """Per-system test F1, precision, recall by corpus, and macro F1, from evaluation rows."""
    results: Dict = {"test_f1": {}, "test_precision": {}, "test_recall": {}, "macro_f1": {}}
    for system in systems:
        mine = [r for r in rows if r["system"] == system]
        results["test_f1"][system] = {r["corpus"]: r["f1"] for r in mine}
        results["test_precision"][system] = {r["corpus"]: r["precision"] for r in mine}
        results["test_recall"][system] = {r["corpus"]: r["recall"] for r in mine}
        results["macro_f1"][system] = sum(r["f1"] for r in mine) / len(mine)
    return results


def score_tables(results: Dict, corpora: List[str], names: Dict[str, str]) -> List[str]:
    """Markdown lines: the test F1 table (with macro F1), then precision / recall; one row
    per system of `names` (system -> name shown)."""
    lines = ["## Test F1 (%)", "", "| system | " + " | ".join(corpora) + " | macro |", "|---|" + "---|" * (len(corpora) + 1)]
    for system, name in names.items():
        cells = [f"{results['test_f1'][system][c] * 100:.2f}" for c in corpora]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {results['macro_f1'][system] * 100:.2f} |")
    lines += ["", "Precision / recall (%):", "", "| system | " + " | ".join(corpora) + " |", "|---|" + "---|" * len(corpora)]
    for system, name in names.items():
        cells = [f"{results['test_precision'][system][c] * 100:.1f} / {results['test_recall'][system][c] * 100:.1f}" for c in corpora]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def wall_time_lines(wall_seconds: Dict[str, float]) -> List[str]:
    """Markdown lines: the wall time of each stage (n/a: not timed), then an empty line."""
    lines = ["## Wall time of each stage (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {seconds if seconds is not None else 'n/a'} |" for stage, seconds in wall_seconds.items()]
    return lines + [""]


def target_lines(targets: List[Dict]) -> List[str]:
    return ["## Targets", ""] + [f"- **{'PASS' if t['pass'] else 'MISS'}** {t['target']}: {t['measured']}" for t in targets]


def report(results: Dict, rows: List[Dict], corpora: List[str]) -> str:
    lines = [
        "# CNN default configs on the CPU",
        "",
        "Produced by `" + results["setup"]["command"] + "` after `spacy project run all`",
        f"(CPU default configs, {results['setup']['cpus']} CPU cores, {results['setup']['machine']}).",
        "Every figure is in `benchmarks/results.json`. Test splits are scored with seqeval (entity level,",
        "exact match), each corpus on its own entity type only; model selection on devel.",
        "student_softmax, naive and spacy_ner train on the labelled union only"
        + (f", from the run's pretrained tok2vec (`{results['setup']['init_tok2vec']}`)." if results["setup"]["init_tok2vec"] else "."),
        "",
        *score_tables(results, corpora, {system: system for system in SYSTEMS}),
        "", "![F1 by corpus and system](benchmarks/f1_by_corpus.png)", "",
        *target_lines(results["targets"]),
    ]
    speed = results["words_per_second"]
    lines += [
        "", "## Speed, size, memory", "",
        "The three test splits together, one process, batch size " + str(results["setup"]["batch_size"]) + f", each model's fastest of {SPEED_PASSES} passes:", "",
        "| | words/s | size on disk (MB) | peak RSS (MB) |", "|---|---|---|---|",
        f"| student (one pipeline, all types) | {speed['student']:.0f} | {results['size_mb']['student']:.1f} | {results['peak_rss_mb']['student']:.0f} |",
        f"| three teachers, one after another | {speed['teachers']:.0f} | {results['size_mb']['teachers']:.1f} | {results['peak_rss_mb']['teachers']:.0f} |",
        "", f"Speed-up: {results['speedup']:.2f}x.", "",
        "## `annotate` throughput", "",
        f"`python -m spacy_taughtnet annotate` with the student on the three test splits as plain text "
        f"({results['annotate']['docs']} documents, {results['annotate']['words']} words), JSONL out, batch size 64:", "",
        "| processes | docs/s | words/s |", "|---|---|---|",
        *(f"| {n} | {results['annotate'][n]['docs_per_second']:.0f} | {results['annotate'][n]['words_per_second']:.0f} |" for n in ("1", "2")),
        "", f"Scaling from 1 to 2 processes: {results['annotate']['scaling_2_vs_1']:.2f}x.", "",
        f"`aggregate_distributions` on 1,000,000 tokens from 3 teachers: {results['aggregate_1M_tokens_3_teachers_seconds']:.2f} s (best of 3).", "",
        *wall_time_lines(results["wall_seconds"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    assemble_cli() if sys.argv[1:2] == ["assemble"] else main()
