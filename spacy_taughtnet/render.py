"""The `render` command's page: a pipeline's entities on sample documents, drawn by displaCy
with the colours of displacy.py."""
from html import escape
from itertools import islice
from pathlib import Path
from typing import Any, Iterable

from .annotate.runner import DEFAULT_CHUNK_CHARS, annotate_records
from .atomic import is_same_file
from .errors import AnnotateError
from .formats import Record

# Documents on the page unless told otherwise.
DEFAULT_LIMIT = 20


def check_not_input(output: Path, input_path: Path) -> None:
    """Raise if writing `output` would replace the input (atomic.is_same_file)."""
    if is_same_file(output, input_path):
        raise AnnotateError(f"{output}: the output is the input {input_path}; give another output path")


def render_html(
    nlp: Any,
    records: Iterable[Record],
    *,
    limit: int = DEFAULT_LIMIT,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
) -> str:
    """An HTML page (displaCy, style "ent") of the first `limit` records, annotated, with
    the colours of displacy.COLORS and a stable fallback colour for other labels.

    displaCy escapes the text but writes titles and labels as they are: the ids and labels
    are escaped here (the colours keyed by the escaped labels)."""
    from spacy import displacy as spacy_displacy

    from .displacy import colors_for

    labels = set()
    for name in nlp.pipe_names:
        labels.update(nlp.pipe_labels.get(name, []))
    parsed = []
    for record, entities in annotate_records(nlp, islice(records, limit) if limit else records, chunk_chars=chunk_chars):
        labels.update(ent["label"] for ent in entities)
        ents = [{"start": e["start"], "end": e["end"], "label": escape(e["label"])} for e in entities]
        parsed.append({"text": record.text, "ents": ents, "title": escape(str(record.id))})
    colors = {escape(label): color for label, color in colors_for(sorted(labels)).items()}
    return spacy_displacy.render(parsed, style="ent", manual=True, page=True, jupyter=False, options={"colors": colors})
