"""How a per-type student's `doc.ents` is chosen where its heads' spans overlap: each rule on the
same trained student, scored per corpus (doc.ents), beside its span group (each type's own
predictions, the same under every rule). The rules: `confidence` (the more confident span),
`viterbi` (the pipe's `overlaps` setting), `preferences` (`overlap_preferences` learnt on devel,
preferences.py, as train-student does); and, for the learnt ones, a 2-fold cross-validation on
devel (learnt on half the docs, scored on the other half)."""
from pathlib import Path
from typing import Dict, List, Sequence

from .tables import pct

RULES = ("confidence", "viterbi", "preferences")


def measure(root: Path, corpora: Sequence[str], split: str = "dev") -> Dict:
    """Score ROOT's student on each corpus's `split` under every rule; the results as
    benchmarks/overlaps.json holds them."""
    import spacy

    from ..evaluate import evaluate_corpus
    from ..layout import RunLayout
    from ..preferences import cross_validated_f1, dev_predictions, fit_preferences

    layout = RunLayout(root)
    model = layout.student_model
    nlp = spacy.load(model)
    dev = [doc for corpus in corpora for doc in dev_predictions(nlp, "ner", layout.corpus(corpus, "dev"))]
    learnt = fit_preferences(dev)
    settings = {
        "confidence": {"overlaps": "confidence", "overlap_preferences": []},
        "viterbi": {"overlaps": "viterbi", "overlap_preferences": []},
        "preferences": {"overlaps": "confidence", "overlap_preferences": learnt},
    }
    rows: List[Dict] = []
    for rule in RULES:
        nlp = spacy.load(model, config={"components": {"ner": settings[rule]}})
        for corpus in corpora:
            row = evaluate_corpus(nlp, layout.corpus(corpus, split))
            rows.append({
                "rule": rule, "corpus": corpus, "entity_type": row["entity_type"],
                "doc_ents": {k: row["doc_ents"][k] for k in ("precision", "recall", "f1")},
                "spans": {k: row[k] for k in ("precision", "recall", "f1")},
            })
            print(f"{rule:<11} {corpus:<20} doc.ents F1 {pct(row['doc_ents']['f1'])}  spans F1 {pct(row['f1'])}", flush=True)
    return {
        "command": f"python -m spacy_taughtnet benchmark overlaps {root} --corpora \"{' '.join(corpora)}\" --split {split}",
        "split": split,
        "rows": rows,
        "overlap_preferences": learnt,
        "dev_cross_validated_f1": cross_validated_f1(dev),
    }


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/overlaps.json (or overlaps_broad.json)."""
    corpora = list(dict.fromkeys(row["corpus"] for row in results["rows"]))
    by = {(row["rule"], row["corpus"]): row for row in results["rows"]}
    rules = list(dict.fromkeys(row["rule"] for row in results["rows"]))

    def macro(rule: str, key: str) -> float:
        return sum(by[rule, c][key]["f1"] for c in corpora) / len(corpora)

    learnt = results.get("overlap_preferences")
    lines = [
        "## Overlapping spans: how `doc.ents` is chosen" + (f" ({len(corpora)} corpora)" if len(corpora) != 3 else ""), "",
        f"Produced by `{results['command']}`: one trained per-type student, `doc.ents` F1 on the {results['split']} "
        "split of each corpus under each rule (`confidence`: the more confident span wins; `viterbi`: one "
        "constrained Viterbi over every type's tags"
        + ("; `preferences`: the `overlap_preferences` learnt on devel, as train-student learns them" if learnt is not None else "")
        + "). The span group (each type's own predictions) does not depend on the rule.", "",
        "| `doc.ents` F1 | " + " | ".join(corpora) + " | macro |",
        "|---|" + "---|" * (len(corpora) + 1),
    ]
    for rule in rules:
        lines.append(f"| `{rule}` | " + " | ".join(pct(by[rule, c]["doc_ents"]["f1"]) for c in corpora) + f" | {pct(macro(rule, 'doc_ents'))} |")
    cv = results.get("dev_cross_validated_f1")
    if cv is not None:
        lines.append("| `preferences`, 2-fold cross-validated on devel | " + " | ".join(pct(cv[c]) for c in corpora)
                     + f" | {pct(sum(cv[c] for c in corpora) / len(corpora))} |")
    lines.append("| span group | " + " | ".join(pct(by[rules[0], c]["spans"]["f1"]) for c in corpora) + f" | {pct(macro(rules[0], 'spans'))} |")
    if learnt is not None:
        pairs = ", ".join(f"{winner} over {loser}" for winner, loser in learnt) or "none (the confidence rule is best on devel)"
        lines += ["", f"Preferences learnt on devel ([winner, loser]): {pairs}. The cross-validated row learns them on "
                  "half of the devel docs (every other doc) and scores the other half, both ways, counts pooled."]
    return lines
