"""What several sections share: evaluation rows (one per system and corpus) summarised per
system, and the markdown of score tables, targets and stage wall times."""
from typing import Dict, Iterable, List, Optional, Sequence


def pct(x: float) -> str:
    return f"{x * 100:.2f}"


def summarise(rows: Sequence[Dict], systems: Iterable[str]) -> Dict:
    """Per-system test F1, precision, recall by corpus, and macro F1, from evaluation rows."""
    results: Dict = {"test_f1": {}, "test_precision": {}, "test_recall": {}, "macro_f1": {}}
    for system in systems:
        mine = [r for r in rows if r["system"] == system]
        results["test_f1"][system] = {r["corpus"]: r["f1"] for r in mine}
        results["test_precision"][system] = {r["corpus"]: r["precision"] for r in mine}
        results["test_recall"][system] = {r["corpus"]: r["recall"] for r in mine}
        results["macro_f1"][system] = sum(r["f1"] for r in mine) / len(mine)
    return results


def systems_of(rows: Sequence[Dict]) -> List[str]:
    """The systems of evaluation rows, in their order."""
    return list(dict.fromkeys(r["system"] for r in rows))


def score_tables(rows: Sequence[Dict], corpora: Sequence[str], names: Dict[str, str]) -> List[str]:
    """Markdown lines: the test F1 table (with macro F1), then precision / recall; one row
    per system of `names` (system -> name shown)."""
    scores = summarise(rows, names)
    lines = ["### Test F1 (%)", "", "| system | " + " | ".join(corpora) + " | macro |", "|---|" + "---|" * (len(corpora) + 1)]
    for system, name in names.items():
        cells = [pct(scores["test_f1"][system][c]) for c in corpora]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {pct(scores['macro_f1'][system])} |")
    lines += ["", "Precision / recall (%):", "", "| system | " + " | ".join(corpora) + " |", "|---|" + "---|" * len(corpora)]
    for system, name in names.items():
        cells = [f"{scores['test_precision'][system][c] * 100:.1f} / {scores['test_recall'][system][c] * 100:.1f}" for c in corpora]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def wall_time_lines(wall_seconds: Dict[str, Optional[float]]) -> List[str]:
    """Markdown lines: the wall time of each stage (n/a: not timed)."""
    lines = ["### Wall time of each stage (s)", "", "| stage | seconds |", "|---|---|"]
    return lines + [f"| {stage} | {seconds if seconds is not None else 'n/a'} |" for stage, seconds in wall_seconds.items()]


def target(text: str, measured: str, passed: bool) -> Dict:
    return {"target": text, "measured": measured, "pass": bool(passed)}


# doc.ents (what users read) against the span group (each type's own predictions), in points
MAX_DOC_ENTS_MACRO_GAP = 0.3
MAX_DOC_ENTS_CORPUS_GAP = 0.5


def doc_ents_gap_targets(doc_ents: Dict[str, float], spans: Dict[str, float], of: str) -> List[Dict]:
    """How far the student's doc.ents F1 falls under its span group's (per corpus, `of`:
    "mean of 3 seeds", "one run"): the macro gap, and the largest gap of one corpus."""
    macro_gap = (sum(spans.values()) - sum(doc_ents.values())) / len(spans) * 100
    worst = max(spans, key=lambda c: spans[c] - doc_ents[c])
    worst_gap = (spans[worst] - doc_ents[worst]) * 100
    return [
        target(f"student doc.ents macro F1 at most {MAX_DOC_ENTS_MACRO_GAP} under its spans' ({of})",
               points_under(macro_gap), macro_gap <= MAX_DOC_ENTS_MACRO_GAP),
        target(f"no corpus's student doc.ents F1 more than {MAX_DOC_ENTS_CORPUS_GAP} under its spans' ({of})",
               f"{points_under(worst_gap)} on {worst}", worst_gap <= MAX_DOC_ENTS_CORPUS_GAP),
    ]


def points_under(gap: float) -> str:
    return f"{abs(gap):.2f} points {'under' if gap >= 0 else 'over'}"


def target_lines(targets: Sequence[Dict]) -> List[str]:
    return ["### Targets", ""] + [f"- **{'PASS' if t['pass'] else 'MISS'}** {t['target']}: {t['measured']}" for t in targets]


def print_targets(targets: Sequence[Dict]) -> None:
    for t in targets:
        print(f"{'PASS' if t['pass'] else 'MISS'}  {t['target']}: {t['measured']}")
