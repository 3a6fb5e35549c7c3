"""The default model's figures in one file, benchmarks/results.json: the mean of whole `all` runs
over its corpora (one run folder per seed), its baselines (the naive union and the collapse, from
benchmarks/broad.json), the student's speed against its teachers, the workflow's wall time, and
the TaughtNet paper's three corpora (`all_paper`: one run, seed 0) against the figures they had
before the six corpora became the default. Every target of issue 22, PASS or MISS.

Each ROOT is the run folder of one seed, evaluated (`evaluate-all`: ROOT/metrics/); the first one
holding a student model is timed for speed (of the others only metrics/ and timings/ are read).
"""
import json
import statistics
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import ConfigError
from ..layout import RunLayout
from . import broad, seeds
from .speed import SPEED_PASSES, run_words_per_second
from .tables import pct, target, target_lines

# test_f1's systems as issue 22 names them, and the figures (seeds.seeds_f1's names) they hold
SYSTEMS = {"teacher": "teacher", "student": "student_doc_ents", "student_spans": "student"}
SHOWN = {"teacher": "teachers", "student": "student `doc.ents`", "student_spans": "student spans"}
# the paper's three corpora, seed 0, before the six corpora became the default (as issue 22 quotes them)
PAPER_BEFORE = {
    "student": {"NCBI-disease-IOB": 0.7883, "BC5CDR-chem-IOB": 0.8328, "BC2GM-IOB": 0.7272},
    "student_spans": {"NCBI-disease-IOB": 0.8011, "BC5CDR-chem-IOB": 0.8316, "BC2GM-IOB": 0.7424},
}


def macro(f1: Dict[str, float]) -> float:
    return statistics.fmean(f1.values())


def paper_figures(root: Path) -> Dict:
    """The `all_paper` run's test F1 (teacher, student doc.ents, student spans) and its seed."""
    corpora = list(PAPER_BEFORE["student"])
    found = broad.figures(root, corpora)["test_f1"]
    return {"root": str(root), "corpora": corpora, "seed": broad.student_seed(root),
            "test_f1": {system: found[name] for system, name in SYSTEMS.items()}, "before": PAPER_BEFORE}


def baseline_figures(path: Path, corpora: Sequence[str]) -> Dict:
    """The baselines benchmarks/broad.json holds ({} where none), as {name: {"student": doc.ents
    F1, "student_spans": span F1}} per corpus, with the command that measured them."""
    if not path.is_file():
        raise ConfigError(f"{path}: missing; run `python -m spacy_taughtnet benchmark broad ROOT --naive-steps N` first")
    found = json.loads(path.read_text(encoding="utf8"))
    missing = [c for c in corpora if c not in found["corpora"]]
    if missing:
        raise ConfigError(f"{path}: no figures for {missing}")
    out = {}
    for name in broad.BASELINES:
        if f"{name}_doc_ents" in found["test_f1"]:
            out[name] = {"student": {c: found["test_f1"][f"{name}_doc_ents"][c] for c in corpora},
                         "student_spans": {c: found["test_f1"][name][c] for c in corpora},
                         "command": found["command"], "commit": found["commit"]}
    return out


def measure(roots: Sequence[Path], corpora: Sequence[str], baselines: Path, paper_root: Optional[Path],
            commit: Optional[str], batch_size: int) -> Dict:
    """Each seed's figures and their means, the baselines, the speed of the first student found
    and its run's teachers, and the paper's corpora; the results as benchmarks/results.json holds them."""
    found = seeds.seeds_f1(roots, corpora)
    per_seed = {system: found[name] for system, name in SYSTEMS.items()}
    # every input read before the speed measurement, which takes minutes
    baseline, paper = baseline_figures(baselines, corpora), paper_figures(paper_root) if paper_root else None
    timed = next((root for root in roots if RunLayout(root).student_model.is_dir()), None)
    if timed is None:
        raise ConfigError(f"no student model in {', '.join(map(str, roots))}: one run folder must hold one, for the speed")
    speed = run_words_per_second(timed, corpora, batch_size)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    command = (f"python -m spacy_taughtnet benchmark results {' '.join(map(str, roots))} --corpora \"{' '.join(corpora)}\""
               f" --baselines {baselines}" + (f" --paper-root {paper_root}" if paper_root else ""))
    return {
        "command": command + (f" --commit {commit}" if commit else ""),
        "commit": commit or head, "tabulated_at": head, "roots": [str(r) for r in roots], "corpora": list(corpora),
        "entity_types": broad.figures(roots[0], corpora)["entity_types"],
        "test_f1": {system: {c: statistics.fmean(f1[c]) for c in corpora} for system, f1 in per_seed.items()},
        "test_f1_seeds": per_seed,
        "baselines": baseline,
        "speed_root": str(timed), "batch_size": batch_size,
        "words_per_second": speed,
        "wall_minutes": [seeds.wall_minutes(root, corpora) for root in roots],
        **({"all_paper": paper} if paper else {}),
    }


def targets(results: Dict) -> List[Dict]:
    f1, corpora, n_seeds = results["test_f1"], results["corpora"], len(results["roots"])
    out = []
    for c in corpora:
        gap = (f1["student"][c] - f1["teacher"][c]) * 100
        out.append(target(f"student doc.ents F1 >= its teacher's on {c} (mean of {n_seeds} seeds)", f"{gap:+.2f} points", gap >= 0))
    gain = (macro(f1["student"]) - macro(f1["teacher"])) * 100
    out.append(target(f"student doc.ents macro F1 >= the teachers' + {broad.MIN_MACRO_GAIN}", f"{gain:+.2f} points",
                      gain >= broad.MIN_MACRO_GAIN))
    for name, baseline in results["baselines"].items():
        shown, _, least = broad.BASELINES[name]
        gain = (macro(f1["student"]) - macro(baseline["student"])) * 100
        out.append(target(f"student doc.ents macro F1 >= {shown}'s (one run) + {least:g}", f"{gain:+.2f} points", gain >= least))
    paper = results.get("all_paper")
    if paper:
        run = "one run" if paper["seed"] is None else f"seed {paper['seed']}"
        for system in ("student", "student_spans"):
            # the figures before are known to 0.01 points: compare at that precision
            now = {c: round(score, 4) for c, score in paper["test_f1"][system].items()}
            gain = round((macro(now) - macro(paper["before"][system])) * 100, 2)
            out.append(target(f"all_paper ({run}): {SHOWN[system]} macro F1 no worse than before",
                              f"{gain:+.2f} points", gain >= 0))
    wps = results["words_per_second"]
    speedup = wps["student"] / wps["teachers"]
    out.append(target("student >= 20k words/s in one CPU process", f"{wps['student']:,.0f} words/s",
                      wps["student"] >= broad.MIN_WORDS_PER_SECOND))
    out.append(target(f"student >= {broad.MIN_SPEEDUP:g}x the {len(corpora)} teachers (one per corpus, one after another)",
                      f"{speedup:.2f}x", speedup >= broad.MIN_SPEEDUP))
    minutes = results["wall_minutes"]
    slowest = None if None in minutes else max(minutes)
    out.append(target(f"the timed stages of `all` within {broad.MAX_MINUTES} minutes",
                      "n/a (a seed's stages were not all timed)" if slowest is None else f"{slowest:.0f} min (slowest seed)",
                      slowest is not None and slowest <= broad.MAX_MINUTES))
    return out


def _table(f1: Dict[str, Dict[str, float]], corpora: Sequence[str], systems: Dict[str, str]) -> List[str]:
    """Markdown lines: one row per corpus and a macro row, one column per system (name: header)."""
    lines = ["| corpus | " + " | ".join(systems.values()) + " |", "|---|" + "---|" * len(systems)]
    lines += [f"| {c} | " + " | ".join(pct(f1[s][c]) for s in systems) + " |" for c in corpora]
    return lines + ["| macro | " + " | ".join(f"**{pct(macro(f1[s]))}**" for s in systems) + " |"]


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/results.json."""
    f1, corpora, n_seeds, types = results["test_f1"], results["corpora"], len(results["roots"]), results["entity_types"]
    lines = [
        f"## Results: the default model over {n_seeds} seeds, its baselines, the paper's corpora", "",
        f"Command: `{results['command']}`, after `all` once per seed (each a whole run: pretraining, teachers, "
        f"distributions, student; trained by commit {results['commit']}, tabulated at {results['tabulated_at']}); every "
        "figure is in `benchmarks/results.json`. Test F1 (%), mean over the seeds. The headline is the student's "
        "`doc.ents`, what users read; beside it, its span group's predictions for each corpus's type. Macro F1 weighs "
        "each corpus equally.", "",
        "| corpus | type | teacher | student `doc.ents` | `doc.ents` - teacher | student spans | per seed: teacher; student `doc.ents` |",
        "|---|---|---|---|---|---|---|",
    ]
    seeded = results["test_f1_seeds"]
    for c in corpora:
        lines.append(
            f"| {c} | {types[c]} | {pct(f1['teacher'][c])} | **{pct(f1['student'][c])}** | "
            f"{(f1['student'][c] - f1['teacher'][c]) * 100:+.2f} | {pct(f1['student_spans'][c])} | "
            f"{' / '.join(map(pct, seeded['teacher'][c]))}; {' / '.join(map(pct, seeded['student'][c]))} |"
        )
    gain = (macro(f1["student"]) - macro(f1["teacher"])) * 100
    lines.append(f"| macro | | {pct(macro(f1['teacher']))} | **{pct(macro(f1['student']))}** | {gain:+.2f} | "
                 f"{pct(macro(f1['student_spans']))} | |")
    baselines = results["baselines"]
    if baselines:
        shown = {"student": "student `doc.ents`", **{name: f"{name} `doc.ents`" for name in baselines}}
        table = {"student": f1["student"], **{name: b["student"] for name, b in baselines.items()}}
        commands = sorted({f"`{b['command']}` (commit {b['commit']})" for b in baselines.values()})
        lines += ["", f"Baselines, one run each, from the same pretrained tok2vec, without teachers (so each corpus's "
                  f"other types are O): {'; '.join(': '.join(broad.BASELINES[name][:2]) for name in baselines)}. Measured by "
                  f"{', '.join(commands)}.", "",
                  *_table(table, corpora, shown)]
    paper = results.get("all_paper")
    if paper:
        before = paper["before"]
        pf1 = {**paper["test_f1"], "before_student": before["student"], "before_spans": before["student_spans"]}
        lines += [
            "", f"The paper's three corpora (`all_paper`: `--vars.corpora \"{' '.join(paper['corpora'])}\"`, one run, "
            f"{'one run' if paper['seed'] is None else 'seed ' + str(paper['seed'])}, `{paper['root']}`) against their figures before the six corpora became the default:", "",
            *_table(pf1, paper["corpora"], {"teacher": "teacher", "student": "student `doc.ents`", "before_student": "before",
                                            "student_spans": "student spans", "before_spans": "before"}),
        ]
    wps, minutes = results["words_per_second"], results["wall_minutes"]
    lines += [
        "", f"Speed (`{results['speed_root']}`, test splits, batch {results['batch_size']}, one process each, fresh "
        f"processes, each model's fastest of {SPEED_PASSES} passes): student {wps['student']:,.0f} words/s, the "
        f"{len(corpora)} teachers one after another {wps['teachers']:,.0f} words/s ({wps['student'] / wps['teachers']:.2f}x).",
        "Wall time of the timed stages of `all` per seed (min): "
        + ", ".join("n/a" if m is None else f"{m:.0f}" for m in minutes) + ".",
        "", *target_lines(targets(results)),
    ]
    return lines
