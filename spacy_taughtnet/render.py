"""The `render` command's page: a pipeline's entities on sample documents, drawn by displaCy
with the colours of displacy.py."""
from itertools import islice
from typing import Any, Iterable

from .annotate.formats import Record
from .annotate.runner import DEFAULT_CHUNK_CHARS, annotate_records


def render_html(
    nlp: Any,
    records: Iterable[Record],
    *,
    limit: int = 20,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
) -> str:
    """An HTML page (displaCy, style "ent") of the first `limit` records, annotated, with
    the colours of displacy.COLORS and a stable fallback colour for other labels."""
    from spacy import displacy as spacy_displacy

    from .displacy import colors_for

    labels = set()
    for name in nlp.pipe_names:
        labels.update(nlp.pipe_labels.get(name, []))
    parsed = []
    for record, entities in annotate_records(nlp, islice(records, limit) if limit else records, chunk_chars=chunk_chars):
        labels.update(ent["label"] for ent in entities)
        ents = [{"start": e["start"], "end": e["end"], "label": e["label"]} for e in entities]
        parsed.append({"text": record.text, "ents": ents, "title": f"{record.id}"})
    return spacy_displacy.render(
        parsed, style="ent", manual=True, page=True, jupyter=False, options={"colors": colors_for(sorted(labels))}
    )
