"""How a per-type student's `doc.ents` is chosen where its heads' spans overlap: each rule of the
pipe's `overlaps` setting on the same trained student, scored on devel per corpus (doc.ents),
beside its span group (each type's own predictions, the same under every rule)."""
from pathlib import Path
from typing import Dict, List, Sequence

from .tables import pct

RULES = ("confidence", "viterbi")


def measure(root: Path, corpora: Sequence[str], split: str = "dev") -> Dict:
    """Score ROOT's student on each corpus's `split` under every rule; the results as
    benchmarks/overlaps.json holds them."""
    import spacy

    from ..evaluate import evaluate_corpus
    from ..layout import RunLayout

    layout = RunLayout(root)
    model = layout.student_model
    rows: List[Dict] = []
    for rule in RULES:
        nlp = spacy.load(model, config={"components": {"ner": {"overlaps": rule}}})
        for corpus in corpora:
            row = evaluate_corpus(nlp, layout.corpus(corpus, split))
            rows.append({
                "rule": rule, "corpus": corpus, "entity_type": row["entity_type"],
                "doc_ents": {k: row["doc_ents"][k] for k in ("precision", "recall", "f1")},
                "spans": {k: row[k] for k in ("precision", "recall", "f1")},
            })
            print(f"{rule:<10} {corpus:<20} doc.ents F1 {pct(row['doc_ents']['f1'])}  spans F1 {pct(row['f1'])}", flush=True)
    return {
        "command": f"python -m spacy_taughtnet benchmark overlaps {root} --corpora \"{' '.join(corpora)}\" --split {split}",
        "split": split,
        "rows": rows,
    }


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/overlaps.json."""
    corpora = list(dict.fromkeys(row["corpus"] for row in results["rows"]))
    by = {(row["rule"], row["corpus"]): row for row in results["rows"]}
    rules = list(dict.fromkeys(row["rule"] for row in results["rows"]))

    def macro(rule: str, key: str) -> float:
        return sum(by[rule, c][key]["f1"] for c in corpora) / len(corpora)

    lines = [
        "## Overlapping spans: how `doc.ents` is chosen", "",
        f"Produced by `{results['command']}`: one trained per-type student, `doc.ents` F1 on the {results['split']} "
        "split of each corpus under each value of the pipe's `overlaps` setting (`confidence`: the more confident "
        "span wins; `viterbi`: one constrained Viterbi over every type's tags). The span group (each type's own "
        "predictions) does not depend on the rule.", "",
        "| `doc.ents` F1 | " + " | ".join(corpora) + " | macro |",
        "|---|" + "---|" * (len(corpora) + 1),
    ]
    for rule in rules:
        lines.append(f"| `{rule}` | " + " | ".join(pct(by[rule, c]["doc_ents"]["f1"]) for c in corpora) + f" | {pct(macro(rule, 'doc_ents'))} |")
    lines.append("| span group | " + " | ".join(pct(by[rules[0], c]["spans"]["f1"]) for c in corpora) + f" | {pct(macro(rules[0], 'spans'))} |")
    return lines
