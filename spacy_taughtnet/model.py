"""The token-level tagging architecture behind `taughtnet_ner`: tok2vec -> tag logits."""
from typing import List, Optional, Sequence

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Config, Linear, Maxout, Model, chain, expand_window, with_array
from thinc.types import Floats2d

# The model of a `taughtnet_ner` pipe whose config gives none: a CNN tok2vec of its own.
DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy-taughtnet.TokenTagger.v1"
hidden_width = 128
window_size = 1
maxout_pieces = 2
dropout = 0.1

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 96
depth = 4
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@registry.architectures("spacy-taughtnet.TokenTagger.v1")
def build_token_tagger(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int = 128,
    window_size: int = 1,
    maxout_pieces: int = 2,
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token tag logits (unnormalised scores) from a tok2vec layer.

    tok2vec: the token vectors (a CNN, a listener, or a transformer listener).
    hidden_width: width of a Maxout layer over each token's window; 0 drops it.
    window_size: neighbours on each side concatenated before the hidden layer; 0 drops it.
    maxout_pieces: pieces of the Maxout layer.
    dropout: dropout of the hidden layer.
    nO: number of tags; set by the component from its labels when None.
    """
    layers = []
    if window_size > 0:
        layers.append(expand_window(window_size=window_size))
    if hidden_width > 0:
        layers.append(Maxout(hidden_width, nP=maxout_pieces, dropout=dropout, normalize=True))
    output_layer = Linear(nO=nO)
    # pad: the window must not reach into the neighbouring doc of a batch
    tagger = chain(*layers, output_layer) if layers else output_layer  # chain() needs two
    head = with_array(tagger, pad=window_size)
    model = chain(tok2vec, head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    return model


def set_tag_count(model: Model, n_tags: int, labels: Sequence[str], pipe_name: str) -> None:
    """Size the tagger's output layer to the `n_tags` columns of `labels`; refuse a model
    already sized otherwise."""
    output_layer = model.get_ref("output_layer")
    if output_layer.has_dim("nO") and output_layer.get_dim("nO") != n_tags:
        raise ValueError(
            f"{pipe_name}: the model has {output_layer.get_dim('nO')} outputs, but the labels {list(labels)} need {n_tags}"
        )
    output_layer.set_dim("nO", n_tags)
