"""How the teachers of one type merge (the teachers specification's `merge`: `product`, `mean`
or `corpus`), chosen on devel: students trained alike from one run's corpus, teachers,
pretrained tok2vec and transfer text, each on distributions distilled with another merge, each
scored on the devel split of every corpus of the run, by its span group and by doc.ents.
merges_shared.json holds a closed study of the `corpus` rule (`shared_section`)."""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from .head_targets import devel_results, devel_table


def recorded_merge(arm: Path) -> str:
    """The merge an arm's distributions were distilled with, as their manifest records it."""
    from ..distributions import MANIFEST, TeacherDistributions
    from ..errors import ConfigError
    from ..layout import RunLayout

    path = RunLayout(arm).distributions("train") / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{arm}: no distributions ({path} not found); distill the arm's teachers first")
    teachers = TeacherDistributions(path.parent).manifest["teachers"]
    merges = sorted({t["settings"]["merge"] for t in teachers if "merge" in t["settings"]})
    if len(merges) != 1:
        raise ConfigError(f"{path}: no type has several teachers, so no merge to compare" if not merges else f"{path}: several merges {merges}")
    return merges[0]


def measure(root: Path, arms: Sequence[Path], corpora: Sequence[str]) -> Dict:
    """Score each arm's student (ARM/student/model-best) on each corpus's devel split in ROOT,
    labelled with the merge its distributions record; the results as benchmarks/merges.json holds them."""
    return devel_results("merges", root, arms, corpora, "merge", _arm_student)


def _arm_student(arm: Path) -> Tuple[str, Path]:
    from ..errors import ConfigError
    from ..layout import RunLayout

    model = RunLayout(arm).student_model
    if not (model / "config.cfg").is_file():
        raise ConfigError(f"{arm}: no trained student at {model}")
    return recorded_merge(arm), model


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/merges.json."""
    return devel_table(
        results, "merge", "Teachers of one type: how they merge",
        "students trained alike but for how the teachers of one type are merged (`product`: their product of "
        "experts; `mean`; `corpus`: on a doc of one of the type's corpora that corpus's teachers alone, elsewhere "
        "the product)",
    )


def shared_section(results: Dict) -> List[str]:
    """The markdown of benchmarks/merges_shared.json: `corpus` giving a sentence that two corpora
    hold to both (the arms labelled `corpus, shared sentences`, distilled at 72eb4c7, where
    that rule was tried) against each doc to its own corpus (`corpus`)."""
    return devel_table(
        results, "merge", "Teachers of one type: sentences that two corpora hold",
        "students trained alike but for the rule `corpus` follows on a sentence that two corpora hold "
        "(`corpus`: each doc to its own corpus's teachers, the other type's teachers merged by product; "
        "`corpus, shared sentences`: the sentence to both corpora, so that each type's targets come from "
        "the teachers of the corpus that annotates it there)",
    )
