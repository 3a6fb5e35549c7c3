"""Benchmark of the transformer configs: transformer teachers and student, and CNN students
(configs/student.cfg) distilled from the same transformer teachers, next to the CNN default run.

Run after the `all` workflow with the transformer configs, e.g. with the offline MiniLM:

    spacy project run all . --vars.corpora_dir ../shared/corpora --vars.root training_trf \\
        --vars.teacher_config teacher_trf.cfg --vars.student_config student_trf.cfg \\
        --vars.transformer MODEL_FOLDER --vars.transformer_case uncased \\
        --vars.teacher_max_steps 600 --vars.student_max_steps 1500
    python scripts/benchmark_transformers.py training_trf --cnn-root training \\
        --corpora "NCBI-disease-IOB BC5CDR-chem-IOB BC2GM-IOB"

Trains two CNN students on ROOT/distributions/train (the transformer teachers'), the default
configs/student.cfg and one with a 2-layer encoder, into ROOT/benchmark/student_cnn and
ROOT/benchmark/student_cnn_depth2 (kept: a rerun resumes), scores every system on each test split,
measures words/s of each on the CPU in a fresh process (the students also with torch held to
one thread, as the CNN uses one), and writes
benchmarks/transformers.json and benchmarks/transformers.md, then rebuilds BENCHMARKS.md.
"""
import argparse
import json
import multiprocessing
import platform
import time
from pathlib import Path
from typing import Dict, List, Optional

import spacy
from benchmark import (
    PROJECT,
    assemble_report,
    run,
    score_tables,
    size_mb,
    summarise,
    target_lines,
    throughput,
    timing,
    wall_time_lines,
)
from spacy.util import load_config

from spacy_taughtnet.atomic import atomic_path
from spacy_taughtnet.evaluate import evaluate_corpus, format_table
from spacy_taughtnet.layout import RunLayout, best_model
from spacy_taughtnet.workflow import parse_corpora

LABELS = {
    "trf_teacher": "transformer teachers (one per corpus)",
    "trf_student": "transformer student",
    "cnn_student_from_trf": "CNN student distilled from the transformer teachers",
    "cnn_student_from_trf_depth2": "CNN student distilled from the transformer teachers, 2-layer encoder",
    "cnn_teacher": "CNN teachers (default run)",
    "cnn_student": "CNN student (default run)",
}
# The CNN students trained on the transformer teachers' distributions: output folder under
# ROOT/benchmark/ and config overrides of configs/student.cfg.
CNN_STUDENTS = {
    "cnn_student_from_trf": ("student_cnn", []),
    "cnn_student_from_trf_depth2": ("student_cnn_depth2", ["--components.tok2vec.model.encode.depth", "2"]),
}
SPEED_TARGET, F1_LOSS_TARGET = 10.0, 2.0


def budget(model: Path) -> Dict:
    """What a trained pipeline was trained with, from its config.cfg."""
    config = load_config(model / "config.cfg", interpolate=False)
    training = config["training"]
    return {
        "pipeline": config["nlp"]["pipeline"],
        "transformer": config["paths"].get("transformer"),
        "max_steps": training["max_steps"],
        "eval_frequency": training["eval_frequency"],
        "batch_size_padded_tokens": training["batcher"].get("size"),
    }


def system_models(root: Path, cnn_root: Optional[Path], corpora: List[str], steps: int, eval_frequency: int) -> Dict[str, List[Path]]:
    """Each system's pipelines: one per corpus for teachers, one for a student."""
    layout = RunLayout(root)
    models = {"trf_teacher": layout.teacher_models(corpora), "trf_student": [layout.student_model]}
    for system, (folder, overrides) in CNN_STUDENTS.items():
        output = layout.benchmark(folder)
        if not best_model(output).is_dir():
            run(["-m", "spacy_taughtnet", "train-student", str(root), "configs/student.cfg", "--output", str(output),
                 "--max-steps", str(steps), "--eval-frequency", str(eval_frequency), *overrides])
        models[system] = [best_model(output)]
    if cnn_root is not None:
        models["cnn_teacher"] = RunLayout(cnn_root).teacher_models(corpora)
        models["cnn_student"] = [RunLayout(cnn_root).student_model]
    for system, paths in models.items():
        for path in paths:
            if not (path / "config.cfg").is_file():
                raise SystemExit(f"{path}: no trained pipeline here ({LABELS[system]}); run the `all` workflow first")
    return models


def score(models: Dict[str, List[Path]], tests: List[Path], corpora: List[str]) -> List[Dict]:
    """Each system on each corpus's test split (a teacher on its own corpus)."""
    rows = []
    for system, paths in models.items():
        pipelines = [spacy.load(p) for p in paths] if len(paths) == len(corpora) else [spacy.load(paths[0])] * len(corpora)
        for corpus, nlp, test in zip(corpora, pipelines, tests):
            rows.append({"system": system, **evaluate_corpus(nlp, test), "corpus": corpus})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="run folder of `spacy project run all` with the transformer configs")
    parser.add_argument("--corpora", required=True)
    parser.add_argument("--cnn-root", type=Path, default=None, help="run folder of the CNN default `all` run, for comparison")
    parser.add_argument("--steps", type=int, default=10000, help="training steps of each CNN student (the CNN default's)")
    parser.add_argument("--eval-frequency", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--speed-docs", type=int, default=1000, help="words/s over the first N docs of each test split (0: all)")
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks")
    parser.add_argument("--report", type=Path, default=PROJECT / "BENCHMARKS.md")
    args = parser.parse_args()
    root, corpora = args.root, parse_corpora(args.corpora)
    if args.cnn_root is not None and not args.cnn_root.is_dir():
        parser.error(f"--cnn-root {args.cnn_root}: no such run folder")
    start = time.perf_counter()
    models = system_models(root, args.cnn_root, corpora, args.steps, args.eval_frequency)
    # both runs prepare the same test splits from the same corpora
    tests = [RunLayout(root).corpus(c, "test") for c in corpora]
    rows = score(models, tests, corpora)
    results = summarise(rows, models)

    speed = {}
    for system in ("trf_student", *CNN_STUDENTS, "trf_teacher"):
        print(f"throughput: {LABELS[system]}", flush=True)
        speed[system] = throughput(models[system], tests, args.batch_size, args.speed_docs)
    # torch runs the transformer on every core, the CNN (thinc's numpy ops) on one: also
    # compare the students with torch held to one thread
    one_thread = {}
    for system in ("trf_student", *CNN_STUDENTS):
        print(f"throughput, one thread: {LABELS[system]}", flush=True)
        one_thread[system] = throughput(models[system], tests, args.batch_size, args.speed_docs, threads=1)
    results["words_per_second"] = {k: v["words_per_second"] for k, v in speed.items()}
    results["words_per_second_one_thread"] = {k: v["words_per_second"] for k, v in one_thread.items()}
    results["peak_rss_mb"] = {k: v["peak_rss_mb"] for k, v in speed.items()}
    results["size_mb"] = {system: size_mb(paths) for system, paths in models.items()}
    trf_wps, trf_wps_one = speed["trf_student"]["words_per_second"], one_thread["trf_student"]["words_per_second"]
    results["speedup_vs_trf_student"] = {system: speed[system]["words_per_second"] / trf_wps for system in CNN_STUDENTS}
    results["speedup_vs_trf_student_one_thread"] = {system: one_thread[system]["words_per_second"] / trf_wps_one for system in CNN_STUDENTS}
    results["f1_loss_vs_trf_student"] = {
        system: (results["macro_f1"]["trf_student"] - results["macro_f1"][system]) * 100 for system in CNN_STUDENTS
    }
    results["budget"] = {system: budget(paths[0]) for system, paths in models.items()}
    stages = [f"teacher-{c}" for c in corpora] + ["distill-train", "student"] + [folder for folder, _ in CNN_STUDENTS.values()]
    results["wall_seconds"] = {stage: timing(root, stage) for stage in stages}
    results["benchmark_seconds"] = round(time.perf_counter() - start, 1)
    cnn_root = f" --cnn-root {args.cnn_root}" if args.cnn_root else ""
    results["setup"] = {
        "corpora": corpora, "cnn_student_steps": args.steps, "batch_size": args.batch_size, "speed_docs": args.speed_docs, "seed": 0,
        "machine": platform.platform(), "cpus": multiprocessing.cpu_count(), "spacy": spacy.__version__,
        "command": f"python scripts/benchmark_transformers.py {root}{cnn_root} --corpora \"{' '.join(corpora)}\"",
    }
    results["targets"] = targets(results)
    args.output.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.output / "transformers.json") as tmp:
        tmp.write_text(json.dumps({"rows": rows, **results}, indent=2) + "\n")
    with atomic_path(args.output / "transformers.md") as tmp:
        tmp.write_text(report(results, corpora))
    assemble_report(args.output, args.report)
    print(format_table(rows, ("system", "corpus", "precision", "recall", "f1")))
    for target in results["targets"]:
        print(f"{'PASS' if target['pass'] else 'MISS'}  {target['target']}: {target['measured']}")


def targets(results: Dict) -> List[Dict]:
    """Each CNN student against the transformer student: words/s with torch on every core
    and with one thread each, and macro F1."""
    out = []
    for system in CNN_STUDENTS:
        speedup, speedup_one = results["speedup_vs_trf_student"][system], results["speedup_vs_trf_student_one_thread"][system]
        loss = results["f1_loss_vs_trf_student"][system]
        out += [
            {"target": f"{LABELS[system]}: >= {SPEED_TARGET:g}x the transformer student's CPU words/s, torch on all "
                       f"{results['setup']['cpus']} cores", "measured": f"{speedup:.1f}x", "pass": bool(speedup >= SPEED_TARGET)},
            {"target": f"{LABELS[system]}: >= {SPEED_TARGET:g}x the transformer student's CPU words/s, one thread each",
             "measured": f"{speedup_one:.1f}x", "pass": bool(speedup_one >= SPEED_TARGET)},
            {"target": f"{LABELS[system]}: macro F1 >= the transformer student's - {F1_LOSS_TARGET:g}",
             "measured": f"{-loss:+.2f} points", "pass": bool(loss <= F1_LOSS_TARGET)},
        ]
    return out


def report(results: Dict, corpora: List[str]) -> str:
    f1, plan = results["test_f1"], results["budget"]
    trf_teacher, trf_student = plan["trf_teacher"], plan["trf_student"]
    lines = [
        "# Transformer configs on the CPU",
        "",
        "Produced by `" + results["setup"]["command"] + "` after `spacy project run all` with the transformer configs",
        f"(`teacher_trf.cfg`, `student_trf.cfg`) and the transformer `{trf_student['transformer']}`,",
        f"on {results['setup']['cpus']} CPU cores. Bounded budget: each transformer teacher {trf_teacher['max_steps']} steps, "
        f"the transformer student {trf_student['max_steps']} steps (batches of at most "
        f"{trf_student['batch_size_padded_tokens']} padded tokens), each CNN student "
        f"{plan['cnn_student_from_trf']['max_steps']} steps; model selection on devel every "
        f"{trf_teacher['eval_frequency']} (teachers) / {trf_student['eval_frequency']} (students) steps.",
        "Every figure is in `benchmarks/transformers.json`.",
        "",
        *score_tables(results, corpora, {system: LABELS[system] for system in f1}),
        "",
        *target_lines(results["targets"]),
    ]
    lines += [
        "", "## Speed, size, memory (CPU)", "",
        f"The first {results['setup']['speed_docs'] or 'all'} docs of each test split, one process, batch size "
        f"{results['setup']['batch_size']}, transformer teachers one after another. torch uses all "
        f"{results['setup']['cpus']} cores by default, thinc's CNN one; the one-thread column holds torch to one:", "",
        "| system | words/s | words/s, one thread | size on disk (MB) | peak RSS (MB) |", "|---|---|---|---|---|",
    ]
    for system, wps in results["words_per_second"].items():
        single = results["words_per_second_one_thread"].get(system)
        single = f"{single:.0f}" if single else "-"
        lines.append(f"| {LABELS[system]} | {wps:.0f} | {single} | {results['size_mb'][system]:.1f} | {results['peak_rss_mb'][system]:.0f} |")
    lines += ["", *wall_time_lines(results["wall_seconds"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
