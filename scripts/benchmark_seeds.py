"""The default workflow over several seeds (the whole `all`, teachers included): per-seed and
mean test F1 of each corpus's teacher and of the student, macro F1, the accuracy targets with
PASS/MISS, the student's speed against its three teachers and the workflow's wall time.

Each ROOT is the run folder of one seed, evaluated (`evaluate-all`: ROOT/metrics/):

    python scripts/benchmark_seeds.py training training-seed1 training-seed2 --corpora "NCBI-disease-IOB BC5CDR-chem-IOB BC2GM-IOB"

Updates benchmarks/results.json (test_f1.teacher / test_f1.student: the means over the seeds;
test_f1_seeds: the per-seed values; accuracy_targets; setup.seeds), writes benchmarks/seeds.md
and rebuilds BENCHMARKS.md.
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import PROJECT, SPEED_PASSES, assemble_report, throughput  # noqa: E402

from spacy_taughtnet.atomic import atomic_path  # noqa: E402
from spacy_taughtnet.layout import RunLayout  # noqa: E402
from spacy_taughtnet.workflow import parse_corpora  # noqa: E402

# the stages of `all` that pretrain, train or distill, as timed in ROOT/timings/ (pretrain and
# distill-transfer: only in a run with pretraining and transfer text)
STAGES = ("teacher-{corpus}", "distill-train", "student")
OPTIONAL_STAGES = ("pretrain", "distill-transfer")


def seed_rows(root: Path, corpora: List[str]) -> Dict[str, Dict[str, Dict]]:
    """{"teacher"|"student": {corpus: evaluation row}} of one run folder."""
    layout = RunLayout(root)
    rows = {}
    for group in ("teacher", "student"):
        path = layout.metrics(f"{group}s" if group == "teacher" else group)
        if not path.is_file():
            sys.exit(f"{path}: missing; run `python -m spacy_taughtnet evaluate-all {root} --corpora ...` first")
        found = {row["corpus"]: row for row in json.loads(path.read_text())}
        missing = [c for c in corpora if c not in found]
        if missing:
            sys.exit(f"{path}: no row for {missing}")
        rows[group] = {c: found[c] for c in corpora}
    return rows


def wall_minutes(root: Path, corpora: List[str]) -> float:
    layout, seconds = RunLayout(root), 0.0
    for stage in STAGES:
        for name in ([stage.format(corpus=c) for c in corpora] if "{corpus}" in stage else [stage]):
            path = layout.timings(name)
            if not path.is_file():
                return None
            seconds += json.loads(path.read_text())["seconds"]
    for stage in OPTIONAL_STAGES:
        if layout.timings(stage).is_file():
            seconds += json.loads(layout.timings(stage).read_text())["seconds"]
    return seconds / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", type=Path, nargs="+", help="run folders, one per seed (the first is timed for speed)")
    parser.add_argument("--corpora", required=True)
    parser.add_argument("--commit", help="the commit whose code trained the runs (default: HEAD)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks")
    parser.add_argument("--report", type=Path, default=PROJECT / "BENCHMARKS.md")
    args = parser.parse_args()
    corpora = parse_corpora(args.corpora)
    runs = [seed_rows(root, corpora) for root in args.roots]

    def per_seed(group: str, on_doc_ents: bool = False) -> Dict[str, List[float]]:
        """F1 per corpus and seed; on_doc_ents: a per-type student's figures on doc.ents."""
        def f1(row: Dict) -> float:
            return (row.get("doc_ents", row) if on_doc_ents else row)["f1"]

        return {c: [f1(run[group][c]) for run in runs] for c in corpora}

    seeds = {"teacher": per_seed("teacher"), "student": per_seed("student"), "student_doc_ents": per_seed("student", True)}
    mean = {system: {c: statistics.fmean(v) for c, v in by_corpus.items()} for system, by_corpus in seeds.items()}
    macro = {system: statistics.fmean(by_corpus.values()) for system, by_corpus in mean.items()}

    first = RunLayout(args.roots[0])
    tests = [first.corpus(c, "test") for c in corpora]
    speed = {"student": throughput([first.student_model], tests, args.batch_size),
             "teachers": throughput(first.teacher_models(corpora), tests, args.batch_size)}
    speedup = speed["student"]["words_per_second"] / speed["teachers"]["words_per_second"]
    minutes = [wall_minutes(root, corpora) for root in args.roots]

    targets = []
    for c in corpora:
        gap = (mean["student"][c] - mean["teacher"][c]) * 100
        targets.append({"target": f"student F1 >= its teacher's on {c} (mean of {len(runs)} seeds)", "measured": f"{gap:+.2f} points", "pass": gap >= 0})
    gain = (macro["student"] - macro["teacher"]) * 100
    targets.append({"target": "student macro F1 >= teachers' macro F1 + 0.5", "measured": f"{gain:+.2f} points", "pass": gain >= 0.5})
    wps = speed["student"]["words_per_second"]
    targets.append({"target": "student >= 20k words/s in one CPU process", "measured": f"{wps:,.0f} words/s", "pass": wps >= 20000})
    targets.append({"target": "student >= 2.8x the three teachers", "measured": f"{speedup:.2f}x", "pass": speedup >= 2.8})
    if None not in minutes:
        slowest = max(minutes)
        targets.append({"target": "pretrain + teachers + distill + student of `all` within 90 minutes", "measured": f"{slowest:.0f} min (slowest seed)", "pass": slowest <= 90})

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True).stdout.strip()
    commit = args.commit or head
    command = f"python scripts/benchmark_seeds.py {' '.join(map(str, args.roots))} --corpora \"{' '.join(corpora)}\""
    command += f" --commit {commit}" if args.commit else ""
    results_path = args.output / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.setdefault("test_f1", {}).update({"teacher": mean["teacher"], "student": mean["student"]})
    results.setdefault("macro_f1", {}).update({"teacher": macro["teacher"], "student": macro["student"]})
    results["test_f1_seeds"] = seeds
    results["accuracy_targets"] = targets
    results.setdefault("setup", {})["seeds"] = {
        "roots": [str(r) for r in args.roots], "n_seeds": len(runs), "commit": commit, "tabulated_at": head, "command": command,
        "words_per_second": {k: v["words_per_second"] for k, v in speed.items()}, "wall_minutes": minutes,
    }
    with atomic_path(results_path) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")

    lines = [
        f"# The default student over {len(runs)} seeds", "",
        f"Command: `{command}`, after `all` once per seed (each a whole run: pretraining, teachers, distributions, "
        f"student; trained by commit {commit}, tabulated at {head}). Test F1 (%), mean over the seeds, then each seed's; the student's "
        "figure for a corpus is its prediction for that corpus's type (the type's head, `doc.spans`), "
        "its `doc.ents` (overlaps across types resolved) in the last column.", "",
        "| corpus | teacher | student | student - teacher | teacher per seed | student per seed | student doc.ents |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in corpora:
        t, s = seeds["teacher"][c], seeds["student"][c]
        lines.append(
            f"| {c} | {mean['teacher'][c] * 100:.2f} | **{mean['student'][c] * 100:.2f}** | {(mean['student'][c] - mean['teacher'][c]) * 100:+.2f} | "
            f"{' / '.join(f'{x * 100:.2f}' for x in t)} | {' / '.join(f'{x * 100:.2f}' for x in s)} | {mean['student_doc_ents'][c] * 100:.2f} |"
        )
    lines.append(f"| macro | {macro['teacher'] * 100:.2f} | **{macro['student'] * 100:.2f}** | {(macro['student'] - macro['teacher']) * 100:+.2f} | | | {macro['student_doc_ents'] * 100:.2f} |")
    lines += [
        "", f"Speed (test splits, batch {args.batch_size}, one process each, fresh processes, each model's fastest of {SPEED_PASSES} passes): student "
        f"{wps:,.0f} words/s, the three teachers one after another {speed['teachers']['words_per_second']:,.0f} words/s.",
        "Wall time of (pretrain +) teachers + distill (+ distill-transfer) + student per seed (min): " + ", ".join("n/a" if m is None else f"{m:.0f}" for m in minutes) + ".",
        "", "## Targets", "",
    ] + [f"- **{'PASS' if t['pass'] else 'MISS'}** {t['target']}: {t['measured']}" for t in targets]
    with atomic_path(args.output / "seeds.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    assemble_report(args.output, args.report)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
