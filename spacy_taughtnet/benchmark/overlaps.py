"""How a per-type student's `doc.ents` is chosen where its heads' spans overlap: each rule on the
same trained student, scored per corpus (doc.ents), beside its span group (each type's own
predictions, the same under every rule). The rules: `confidence` (the more confident span),
`viterbi` (the pipe's `overlaps` setting), `preferences` (`overlap_preferences` learnt on devel,
preferences.py, as train-student does); and, for the learnt ones, a 2-fold cross-validation on
devel (learnt on half the docs, scored on the other half). `clashes` says where doc.ents loses
to the span group: the gold spans it drops, by the type that took their place and how the two
overlap."""
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence

from .tables import pct

RULES = ("confidence", "viterbi", "preferences")
# how a dropped span overlaps the span kept over it, as the clash table says it (ents.RELATIONS)
RELATIONS = {"same": "same tokens", "inside": "inside it", "contains": "containing it", "crossing": "crossing"}
# a span dropped for one that a preferred span replaced later, so that none kept overlaps it
REPLACED = ("none", "overlapping a span since replaced")
RELATION_ORDER = (*RELATIONS.values(), REPLACED[1])  # the clash rows' order among equal counts
CLASH_ROWS = 8


def relation(span, winner) -> str:
    """How a dropped (start, end, ...) span overlaps the (start, end, ...) span kept over it."""
    from ..ents import overlap_relation

    return RELATIONS[overlap_relation(span, winner)]


def clashes(docs, preferences) -> List[Dict]:
    """Each corpus's spans of its own type that the span group has and doc.ents (under
    `preferences`, as choose_ents applies them) drops: gold ones (`lost`, recall doc.ents gives
    up) and wrong ones (`dropped`, precision it gains), counted by the type of the most
    confident span kept over each and by how the two overlap (REPLACED where none kept
    overlaps it); most lost first."""
    from ..ents import choose_ents

    counted: Counter = Counter()
    for doc in docs:
        kept = [doc.found[i] for i in choose_ents(doc.found, (), preferences)]
        for span in doc.found:
            if span[2] != doc.entity_type or span in kept:
                continue
            winner = next((k for k in sorted(kept, key=lambda k: -k[3]) if k[0] < span[1] and span[0] < k[1]), None)
            gold = "lost" if span[:2] in doc.gold else "dropped"
            kind = REPLACED if winner is None else (winner[2], relation(span, winner))
            counted[(doc.corpus, doc.entity_type, *kind, gold)] += 1
    keys = {key[:4] for key in counted}
    rows = [{"corpus": c, "entity_type": t, "winner": w, "relation": r,
             "lost": counted[c, t, w, r, "lost"], "dropped": counted[c, t, w, r, "dropped"]} for c, t, w, r in keys]
    return sorted(rows, key=lambda row: (-row["lost"], -row["dropped"], row["corpus"], row["winner"], RELATION_ORDER.index(row["relation"])))


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
        "dev_clashes": clashes(dev, {tuple(p) for p in learnt}),
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
        pairs = ", ".join(f"{p[0]} over {p[1]}" + (f" ({p[2]})" if p[2:] else "") for p in learnt)
        lines += ["", f"Preferences learnt on devel ([winner, loser], or (relation) where they hold only if the winner's "
                  f"span is the same as, contains, is inside or is crossing the loser's): "
                  f"{pairs or 'none (the confidence rule is best on devel)'}. The cross-validated row learns them on "
                  "half of the devel docs (every other doc) and scores the other half, both ways, counts pooled."]
    found = results.get("dev_clashes")
    if found:
        rule = "the learnt preferences" if learnt else "`confidence`"
        lines += ["", f"Where `doc.ents` (under {rule}) loses to the span group on devel: each corpus's spans of its own "
                  "type that the span group has and `doc.ents` drops for an overlapping span of another type, by that "
                  "type and how the dropped span overlaps it; gold ones lost (recall), wrong ones dropped (precision gained). "
                  f"The {min(len(found), CLASH_ROWS)} most lost of {len(found)}:", "",
                  "| corpus | its type | kept instead | dropped span | gold lost | wrong dropped |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['corpus']} | {r['entity_type']} | {r['winner']} | {r['relation']} | {r['lost']} | {r['dropped']} |"
                  for r in found[:CLASH_ROWS]]
        lost, dropped = sum(r["lost"] for r in found), sum(r["dropped"] for r in found)
        lines += ["", f"In all: {lost} gold spans lost, {dropped} wrong ones dropped."]
    return lines
