"""The default workflow over several seeds (the whole `all`, teachers included): per-seed and
mean test F1 of each corpus's teacher and of the student, macro F1, the accuracy targets, the
student's speed against its teachers and the workflow's wall time.

Each ROOT is the run folder of one seed, evaluated (`evaluate-all`: ROOT/metrics/).
"""
import json
import statistics
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import ConfigError
from ..layout import RunLayout
from .speed import SPEED_PASSES, run_words_per_second
from .tables import doc_ents_gap_targets, pct, target, target_lines

# the stages of `all` that pretrain, train or distill, as timed in ROOT/timings/ (pretrain and
# distill-transfer: only in a run with pretraining and transfer text)
STAGES = ("teacher-{corpus}", "distill-train", "student")
OPTIONAL_STAGES = ("pretrain", "distill-transfer")
# test_f1's systems: the student's figures on its type's spans, and on doc.ents
SYSTEMS = ("teacher", "student", "student_doc_ents")


def seed_rows(root: Path, corpora: Sequence[str]) -> Dict[str, Dict[str, Dict]]:
    """{"teacher"|"student": {corpus: evaluation row}} of one run folder."""
    layout = RunLayout(root)
    rows = {}
    for group in ("teacher", "student"):
        path = layout.metrics(f"{group}s" if group == "teacher" else group)
        if not path.is_file():
            raise ConfigError(f"{path}: missing; run `python -m spacy_taughtnet evaluate-all {root} --corpora ...` first")
        found = {row["corpus"]: row for row in json.loads(path.read_text())}
        missing = [c for c in corpora if c not in found]
        if missing:
            raise ConfigError(f"{path}: no row for {missing}")
        rows[group] = {c: found[c] for c in corpora}
    return rows


def wall_minutes(root: Path, corpora: Sequence[str]) -> Optional[float]:
    """Minutes of the timed stages of `all` (None: one of STAGES was not timed)."""
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


def seeds_f1(roots: Sequence[Path], corpora: Sequence[str]) -> Dict[str, Dict[str, List[float]]]:
    """F1 per system, corpus and seed; a per-type student's doc.ents figures as student_doc_ents."""
    runs = [seed_rows(root, corpora) for root in roots]
    return {
        "teacher": {c: [run["teacher"][c]["f1"] for run in runs] for c in corpora},
        "student": {c: [run["student"][c]["f1"] for run in runs] for c in corpora},
        "student_doc_ents": {c: [run["student"][c].get("doc_ents", run["student"][c])["f1"] for run in runs] for c in corpora},
    }


def measure(roots: Sequence[Path], corpora: Sequence[str], commit: Optional[str], batch_size: int) -> Dict:
    """Each seed's figures, and the speed of the first seed's student and teachers; the
    results as benchmarks/seeds.json holds them."""
    test_f1 = seeds_f1(roots, corpora)
    speed = run_words_per_second(roots[0], corpora, batch_size)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = f"python -m spacy_taughtnet benchmark seeds {' '.join(map(str, roots))} --corpora \"{' '.join(corpora)}\""
    return {
        "command": command + (f" --commit {commit}" if commit else ""),
        "commit": commit or head, "tabulated_at": head, "roots": [str(r) for r in roots],
        "corpora": list(corpora), "batch_size": batch_size, "test_f1": test_f1,
        "words_per_second": speed,
        "wall_minutes": [wall_minutes(root, corpora) for root in roots],
    }


def summary(results: Dict) -> Dict:
    """Mean F1 over the seeds per system and corpus ("mean"), and their macro F1 ("macro")."""
    mean = {system: {c: statistics.fmean(v) for c, v in results["test_f1"][system].items()} for system in SYSTEMS}
    return {"mean": mean, "macro": {system: statistics.fmean(mean[system].values()) for system in SYSTEMS}}


def targets(results: Dict) -> List[Dict]:
    scores, n_seeds = summary(results), len(results["roots"])
    mean, macro = scores["mean"], scores["macro"]
    out = []
    for c in results["corpora"]:
        gap = (mean["student_doc_ents"][c] - mean["teacher"][c]) * 100
        out.append(target(f"student doc.ents F1 >= its teacher's on {c} (mean of {n_seeds} seeds)", f"{gap:+.2f} points", gap >= 0))
    gain = (macro["student_doc_ents"] - macro["teacher"]) * 100
    out.append(target("student doc.ents macro F1 >= teachers' macro F1 + 0.5", f"{gain:+.2f} points", gain >= 0.5))
    out += doc_ents_gap_targets(mean["student_doc_ents"], mean["student"], f"mean of {n_seeds} seeds")
    wps = results["words_per_second"]
    speedup = wps["student"] / wps["teachers"]
    out.append(target("student >= 20k words/s in one CPU process", f"{wps['student']:,.0f} words/s", wps["student"] >= 20000))
    out.append(target("student >= 2.8x the three teachers", f"{speedup:.2f}x", speedup >= 2.8))
    if None not in results["wall_minutes"]:
        slowest = max(results["wall_minutes"])
        out.append(target("pretrain + teachers + distill + student of `all` within 90 minutes", f"{slowest:.0f} min (slowest seed)", slowest <= 90))
    return out


def chart(results: Dict, path: Path) -> None:
    """benchmarks/f1_seeds.png: the section's test F1 (mean over the seeds, each seed's as a
    dot) by corpus and macro, for the student's doc.ents, its type's spans and the teachers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..atomic import atomic_path

    scores, corpora, n_seeds = summary(results), results["corpora"], len(results["roots"])
    shown = (("student_doc_ents", "student, doc.ents"), ("student", "student, its type's spans"), ("teacher", "teachers"))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(shown)
    groups = [*corpora, "macro"]
    for i, (system, label) in enumerate(shown):
        means = [scores["mean"][system][c] * 100 for c in corpora] + [scores["macro"][system] * 100]
        xs = [x + i * width for x in range(len(groups))]
        bars = ax.bar(xs, means, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, label_type="center", color="white")
        for x, corpus in zip(xs, corpora):
            ax.plot([x] * n_seeds, [f * 100 for f in results["test_f1"][system][corpus]], "k.", markersize=3)
    ax.set_xticks([x + width * (len(shown) - 1) / 2 for x in range(len(groups))], groups)
    ax.set_ylabel("test F1 (seqeval, own type)")
    ax.set_ylim(50, 90)
    fig.legend(*ax.get_legend_handles_labels(), ncol=len(shown), fontsize=8, loc="lower center")
    ax.set_title(f"Test F1, mean of {n_seeds} seeds (dots: each seed); python -m spacy_taughtnet benchmark seeds", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/seeds.json."""
    scores, n_seeds, f1 = summary(results), len(results["roots"]), results["test_f1"]
    mean, macro = scores["mean"], scores["macro"]
    lines = [
        f"## The student over {n_seeds} seeds: {len(results['corpora'])} corpora", "",
        f"Command: `{results['command']}`, after `all` once per seed (each a whole run: pretraining, teachers, distributions, "
        f"student; trained by commit {results['commit']}, tabulated at {results['tabulated_at']}); every figure is in "
        "`benchmarks/seeds.json`. Test F1 (%), mean over the seeds, then each seed's. The headline is the student's "
        "`doc.ents`, what users read (overlaps across types resolved); beside it, its span group's predictions for "
        "each corpus's type (the type's head, `doc.spans`).", "",
        "| corpus | teacher | student `doc.ents` | `doc.ents` - teacher | student spans | spans - teacher "
        "| teacher per seed | student `doc.ents` per seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ents, spans, teacher = mean["student_doc_ents"], mean["student"], mean["teacher"]
    for c in results["corpora"]:
        lines.append(
            f"| {c} | {pct(teacher[c])} | **{pct(ents[c])}** | {(ents[c] - teacher[c]) * 100:+.2f} | {pct(spans[c])} | "
            f"{(spans[c] - teacher[c]) * 100:+.2f} | {' / '.join(map(pct, f1['teacher'][c]))} | "
            f"{' / '.join(map(pct, f1['student_doc_ents'][c]))} |"
        )
    lines.append(
        f"| macro | {pct(macro['teacher'])} | **{pct(macro['student_doc_ents'])}** | "
        f"{(macro['student_doc_ents'] - macro['teacher']) * 100:+.2f} | {pct(macro['student'])} | "
        f"{(macro['student'] - macro['teacher']) * 100:+.2f} | | |"
    )
    wps = results["words_per_second"]
    lines += [
        "", "![Test F1, mean of the seeds: the student's doc.ents and its type's spans, the teachers](benchmarks/f1_seeds.png)", "",
        f"Speed (test splits, batch {results['batch_size']}, one process each, fresh processes, each model's fastest of "
        f"{SPEED_PASSES} passes): student {wps['student']:,.0f} words/s, the three teachers one after another {wps['teachers']:,.0f} words/s.",
        "Wall time of (pretrain +) teachers + distill (+ distill-transfer) + student per seed (min): "
        + ", ".join("n/a" if m is None else f"{m:.0f}" for m in results["wall_minutes"]) + ".",
        "", *target_lines(targets(results)),
    ]
    return lines
