"""Pretraining the tok2vec: spaCy's `pretrain` loop (configs/pretrain.cfg: the characters
objective) over DocBins read as they are, and the check that pretrained weights fit the
tok2vec of a training config before `spacy train` loads them ([initialize] init_tok2vec).

The weights are the tok2vec layer's bytes (thinc `Model.to_bytes`), as `spacy pretrain`
writes them: they load only into a tok2vec of the same architecture and sizes.
"""
import json
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

from spacy.language import Language
from spacy.training import Example
from spacy.util import registry

from .corpora import read_docbin
from .errors import ConfigError
from .layout import PRETRAIN_RECORD, PRETRAIN_WEIGHTS

# Where spaCy's loop writes in the output folder while it runs (per-epoch weights, log.jsonl).
SPACY_OUTPUT = "spacy-pretrain"


@registry.readers("spacy-taughtnet.PretrainCorpus.v1")
def create_pretrain_corpus(
    path: Path, transfer: Optional[Path] = None, shuffle: bool = True
) -> Callable[[Language], Iterator[Example]]:
    """Docs for `spacy pretrain`: those of a DocBin and of an optional second one, with their
    own tokens (no re-tokenising). Read once and kept in memory.

    path: a DocBin (the union's train split).
    transfer: a DocBin of transfer text (`prepare-transfer`); null reads none.
    shuffle: a new random order of all the docs on each pass (python's `random`, which
        spaCy's pretraining seeds), instead of the files' order.
    """
    return PretrainCorpus([Path(p) for p in (path, transfer) if p is not None], shuffle=shuffle)


class PretrainCorpus:
    def __init__(self, paths: List[Path], *, shuffle: bool = True):
        self.paths = paths
        self.shuffle = shuffle
        self._docs: Optional[list] = None

    def __call__(self, nlp: Language) -> Iterator[Example]:
        if self._docs is None:
            self._docs = [doc for path in self.paths for doc in read_docbin(path, nlp.vocab)]
        docs = list(self._docs)
        if self.shuffle:
            random.shuffle(docs)
        for doc in docs:
            yield Example(doc, doc)


def run_pretraining(config_path: Path, overrides: Dict, output: Path) -> Dict:
    """Run spaCy's pretraining of `config_path` (with `overrides`) and write its final weights,
    averaged as spaCy saves them, to output/tok2vec.bin. Prints spaCy's progress rows (every
    10,000 words). Returns the record: seed, epochs, words, seconds and, per epoch, the
    objective's loss per word (squared error summed over the predicted bytes).
    """
    from spacy.training.pretrain import pretrain
    from spacy.util import load_config

    config = load_config(config_path, overrides=overrides, interpolate=False).interpolate()
    if not config.get("pretraining"):
        raise ConfigError(f"{config_path}: the [pretraining] block is empty (see configs/pretrain.cfg)")
    spacy_output = output / SPACY_OUTPUT
    spacy_output.mkdir()
    start = time.perf_counter()
    pretrain(config, spacy_output, silent=False)
    seconds = time.perf_counter() - start
    # one line per saved epoch, then one for model-last.bin (epoch == max_epochs)
    log = [json.loads(line) for line in (spacy_output / "log.jsonl").read_text().splitlines()]
    epochs = config["pretraining"]["max_epochs"]
    words = log[-1]["nr_word"]
    words_per_epoch = words / epochs if epochs else 0
    losses = {row["epoch"]: row["epoch_loss"] / words_per_epoch for row in log if row["epoch"] < epochs}
    os.replace(spacy_output / "model-last.bin", output / PRETRAIN_WEIGHTS)
    shutil.rmtree(spacy_output)
    return {
        "config": str(config_path),
        "seed": config["training"]["seed"],
        "epochs": epochs,
        "words": words,
        "seconds": round(seconds, 1),
        "words_per_second": round(words / seconds) if seconds else 0,
        "loss_per_word": {str(epoch): round(loss, 4) for epoch, loss in sorted(losses.items())},
        "final_loss_per_word": round(losses[max(losses)], 4) if losses else None,
    }


def init_tok2vec_path(config: Path, overrides: Dict) -> Optional[Path]:
    """The pretrained weights a training config loads ([initialize] init_tok2vec, with the
    overrides), checked before training: the file exists, the config has the [pretraining]
    block that tells spaCy where to load them (without it spaCy ignores init_tok2vec), and
    the weights fit that layer. None when the config loads no weights."""
    from spacy.training.pretrain import get_tok2vec_ref
    from spacy.util import load_config, load_model_from_config
    from thinc.api import Config

    loaded = load_config(config, overrides=overrides, interpolate=True)
    setting = loaded.get("initialize", {}).get("init_tok2vec")
    if not setting:
        return None
    weights = Path(setting)
    if not weights.is_file():
        record = weights.parent / PRETRAIN_RECORD
        if record.is_file() and json.loads(record.read_text(encoding="utf8")).get("epochs") == 0:
            raise ConfigError(
                f"{weights}: pretraining is off ({record}: 0 epochs), so there are no weights to start from; "
                "train with an empty init_tok2vec (--init-tok2vec '', project var init_tok2vec \"\")"
            )
        raise ConfigError(f"{weights}: pretrained tok2vec weights not found (init_tok2vec); run `pretrain` first")
    if not loaded.get("pretraining"):
        raise ConfigError(
            f"{config}: init_tok2vec is {weights}, but the [pretraining] block is empty, so spaCy would "
            "ignore the weights; add one naming the component and layer (as configs/teacher.cfg does)"
        )
    # the pipeline alone: the readers of [corpora] may still lack their paths
    nlp = load_model_from_config(Config({"nlp": loaded["nlp"], "components": loaded["components"]}), auto_fill=True)
    component = loaded["pretraining"]["component"]
    if component not in nlp.pipe_names:
        raise ConfigError(f"{config}: [pretraining] component {component!r} is not in the pipeline {nlp.pipe_names}")
    layer = get_tok2vec_ref(nlp, loaded["pretraining"])
    layer.initialize(X=[nlp.make_doc("Infer the shapes")])
    try:
        layer.from_bytes(weights.read_bytes())
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"{weights}: these pretrained weights do not fit the tok2vec of {config} "
            f"(component {component!r}): {_mismatch(err)}; pretrain with the same [components.{component}] "
            "architecture and sizes (configs/pretrain.cfg has those of teacher.cfg and student.cfg)"
        ) from None
    return weights


# thinc's message when a layer's size in the weights differs from the model's
DIMENSION_ERROR = re.compile(r"Attempt to change dimension '(\w+)' for model '(.*)' from (\S+) to (\S+)")


def _mismatch(err: Exception) -> str:
    """thinc's deserialisation error in one short line (it names a layer by its whole chain
    of sublayers, and a size as "from <the model's> to <the weights'>")."""
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    found = DIMENSION_ERROR.match(message)
    if not found:
        return message
    dim, layer, model_value, weights_value = found.groups()
    layer = f"layer {layer!r}" if len(layer) < 40 else "a layer"
    return f"size {dim} of {layer} is {model_value} in the config, {weights_value} in the weights"
