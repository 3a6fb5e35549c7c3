"""The transformer configs: transformer teachers and student, and CNN students
(configs/student.cfg) distilled from the same transformer teachers, next to the CNN default run.

Run after the `all` workflow with the transformer configs. Trains two CNN students on
ROOT/distributions/train (the transformer teachers'), the default configs/student.cfg and one
with a 2-layer encoder, into ROOT/benchmark/student_cnn and ROOT/benchmark/student_cnn_depth2
(kept: a rerun resumes), scores every system on each test split and measures words/s of each on
the CPU in a fresh process (the students also with torch held to one thread, as the CNN uses one).
"""
import multiprocessing
import platform
import time
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import ConfigError
from ..layout import RunLayout, best_model
from .speed import size_mb, throughput
from .steps import run_step, stage_seconds
from .tables import (
    score_tables,
    summarise,
    systems_of,
    target,
    target_lines,
    wall_time_lines,
)

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


def portable_model_name(name: Optional[str]) -> Optional[str]:
    """A hub name as it is; a model folder inside an installed package as its path from
    site-packages (the page must not name this machine's paths)."""
    parts = Path(name).parts if name else ()
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1 :])
    return name


def budget(model: Path) -> Dict:
    """What a trained pipeline was trained with, from its config.cfg."""
    from spacy.util import load_config

    config = load_config(model / "config.cfg", interpolate=False)
    training = config["training"]
    return {
        "pipeline": config["nlp"]["pipeline"],
        "transformer": portable_model_name(config["paths"].get("transformer")),
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
            run_step(["train-student", str(root), "configs/student.cfg", "--output", str(output),
                      "--max-steps", str(steps), "--eval-frequency", str(eval_frequency), *overrides])
        models[system] = [best_model(output)]
    if cnn_root is not None:
        models["cnn_teacher"] = RunLayout(cnn_root).teacher_models(corpora)
        models["cnn_student"] = [RunLayout(cnn_root).student_model]
    for system, paths in models.items():
        for path in paths:
            if not (path / "config.cfg").is_file():
                raise ConfigError(f"{path}: no trained pipeline here ({LABELS[system]}); run the `all` workflow first")
    return models


def score_systems(models: Dict[str, List[Path]], tests: List[Path], corpora: List[str]) -> List[Dict]:
    """Each system on each corpus's test split (a teacher on its own corpus)."""
    import spacy

    from ..evaluate import evaluate_corpus

    rows = []
    for system, paths in models.items():
        pipelines = [spacy.load(p) for p in paths] if len(paths) == len(corpora) else [spacy.load(paths[0])] * len(corpora)
        for corpus, nlp, test in zip(corpora, pipelines, tests):
            rows.append({"system": system, **evaluate_corpus(nlp, test), "corpus": corpus})
    return rows


def measure(root: Path, cnn_root: Optional[Path], corpora: List[str], steps: int, eval_frequency: int,
            batch_size: int, speed_docs: int) -> Dict:
    """Train the CNN students if missing, score and time every system; the results as
    benchmarks/transformers.json holds them."""
    import spacy

    if cnn_root is not None and not cnn_root.is_dir():
        raise ConfigError(f"--cnn-root {cnn_root}: no such run folder")
    start = time.perf_counter()
    models = system_models(root, cnn_root, corpora, steps, eval_frequency)
    # both runs prepare the same test splits from the same corpora
    tests = [RunLayout(root).corpus(c, "test") for c in corpora]
    rows = score_systems(models, tests, corpora)
    speed, one_thread = {}, {}
    for system in ("trf_student", *CNN_STUDENTS, "trf_teacher"):
        print(f"throughput: {LABELS[system]}", flush=True)
        speed[system] = throughput(models[system], tests, batch_size, speed_docs)
    # torch runs the transformer on every core, the CNN (thinc's numpy ops) on one: also
    # compare the students with torch held to one thread
    for system in ("trf_student", *CNN_STUDENTS):
        print(f"throughput, one thread: {LABELS[system]}", flush=True)
        one_thread[system] = throughput(models[system], tests, batch_size, speed_docs, threads=1)
    stages = [f"teacher-{c}" for c in corpora] + ["distill-train", "student"] + [folder for folder, _ in CNN_STUDENTS.values()]
    cnn_option = f" --cnn-root {cnn_root}" if cnn_root else ""
    return {
        "rows": rows,
        "words_per_second": {k: v["words_per_second"] for k, v in speed.items()},
        "words_per_second_one_thread": {k: v["words_per_second"] for k, v in one_thread.items()},
        "peak_rss_mb": {k: v["peak_rss_mb"] for k, v in speed.items()},
        "size_mb": {system: size_mb(paths) for system, paths in models.items()},
        "budget": {system: budget(paths[0]) for system, paths in models.items()},
        "wall_seconds": {stage: stage_seconds(root, stage) for stage in stages},
        "benchmark_seconds": round(time.perf_counter() - start, 1),
        "setup": {
            "corpora": corpora, "cnn_student_steps": steps, "batch_size": batch_size, "speed_docs": speed_docs, "seed": 0,
            "machine": platform.platform(), "cpus": multiprocessing.cpu_count(), "spacy": spacy.__version__,
            "command": f"python -m spacy_taughtnet benchmark transformers {root}{cnn_option} --corpora \"{' '.join(corpora)}\"",
        },
    }


def targets(results: Dict) -> List[Dict]:
    """Each CNN student against the transformer student: words/s with torch on every core
    and with one thread each, and macro F1."""
    macro = summarise(results["rows"], systems_of(results["rows"]))["macro_f1"]
    out = []
    for system in CNN_STUDENTS:
        speedup = results["words_per_second"][system] / results["words_per_second"]["trf_student"]
        speedup_one = results["words_per_second_one_thread"][system] / results["words_per_second_one_thread"]["trf_student"]
        loss = (macro["trf_student"] - macro[system]) * 100
        out += [
            target(f"{LABELS[system]}: >= {SPEED_TARGET:g}x the transformer student's CPU words/s, torch on all "
                   f"{results['setup']['cpus']} cores", f"{speedup:.1f}x", speedup >= SPEED_TARGET),
            target(f"{LABELS[system]}: >= {SPEED_TARGET:g}x the transformer student's CPU words/s, one thread each",
                   f"{speedup_one:.1f}x", speedup_one >= SPEED_TARGET),
            target(f"{LABELS[system]}: macro F1 >= the transformer student's - {F1_LOSS_TARGET:g}", f"{-loss:+.2f} points", loss <= F1_LOSS_TARGET),
        ]
    return out


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/transformers.json (built as cnn.section is: alike in shape,
    each its own text)."""
    setup, plan = results["setup"], results["budget"]
    trf_teacher, trf_student = plan["trf_teacher"], plan["trf_student"]
    lines = [
        "## Transformer configs on the CPU",
        "",
        f"Produced by `{setup['command']}` after `spacy project run all` with the transformer configs",
        f"(`teacher_trf.cfg`, `student_trf.cfg`) and the transformer `{trf_student['transformer']}`,",
        f"on {setup['cpus']} CPU cores. Bounded budget: each transformer teacher {trf_teacher['max_steps']} steps, "
        f"the transformer student {trf_student['max_steps']} steps (batches of at most "
        f"{trf_student['batch_size_padded_tokens']} padded tokens), each CNN student "
        f"{plan['cnn_student_from_trf']['max_steps']} steps; model selection on devel every "
        f"{trf_teacher['eval_frequency']} (teachers) / {trf_student['eval_frequency']} (students) steps.",
        "Every figure is in `benchmarks/transformers.json`.",
        "",
        *score_tables(results["rows"], setup["corpora"], {system: LABELS[system] for system in systems_of(results["rows"])}),
        "",
        *target_lines(targets(results)),
        "", "### Speed, size, memory (CPU)", "",
        f"The first {setup['speed_docs'] or 'all'} docs of each test split, one process, batch size "
        f"{setup['batch_size']}, transformer teachers one after another. torch uses all "
        f"{setup['cpus']} cores by default, thinc's CNN one; the one-thread column holds torch to one:", "",
        "| system | words/s | words/s, one thread | size on disk (MB) | peak RSS (MB) |", "|---|---|---|---|---|",
    ]
    for system, wps in results["words_per_second"].items():
        single = results["words_per_second_one_thread"].get(system)
        single = f"{single:.0f}" if single else "-"
        lines.append(f"| {LABELS[system]} | {wps:.0f} | {single} | {results['size_mb'][system]:.1f} | {results['peak_rss_mb'][system]:.0f} |")
    return lines + ["", *wall_time_lines(results["wall_seconds"])]
