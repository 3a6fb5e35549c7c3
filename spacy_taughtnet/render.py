"""The `render` command's page: a pipeline's entities on sample documents, drawn by displaCy
with the colours of displacy.py."""
from html import escape
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from .annotate.runner import DEFAULT_CHUNK_CHARS, annotate_records, check_threshold
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
    spans: bool = False,
    threshold: Optional[float] = None,
) -> str:
    """An HTML page of the first `limit` records, annotated, with the colours of
    displacy.COLORS and a stable fallback colour for other labels: displaCy's style "ent"
    (doc.ents), or with `spans` its style "span" (the scored span groups, overlapping spans
    stacked, each label with its probability: "Disease 0.93"; the group's key before the
    label where the pipeline has more than one group). `threshold`: leave out entities and
    spans of a lower probability (annotate_records).

    displaCy escapes the text but writes titles and labels as they are: the ids and labels
    are escaped here (the colours keyed by the escaped labels)."""
    from spacy import displacy as spacy_displacy

    from .displacy import colors_for

    check_threshold(threshold)
    labels = set()
    for name in nlp.pipe_names:
        labels.update(nlp.pipe_labels.get(name, []))
    parsed, shown = [], {}  # shown: each label as drawn, by the label whose colour it takes
    annotated = annotate_records(
        nlp, islice(records, limit) if limit else records, chunk_chars=chunk_chars, spans=spans, threshold=threshold
    )
    for record, entities, groups in annotated:
        labels.update(ent["label"] for ent in entities)
        title = escape(str(record.id))
        if groups is None:
            ents = [{"start": e["start"], "end": e["end"], "label": escape(e["label"])} for e in entities]
            parsed.append({"text": record.text, "ents": ents, "title": title})
        else:
            parsed.append(_span_page_doc(nlp, record.text, groups, title, shown))
    colors = colors_for(sorted(labels | set(shown.values())))
    if spans:
        colors = {drawn: colors[label] for drawn, label in shown.items()}
    colors = {escape(label): color for label, color in colors.items()}
    style = "span" if spans else "ent"
    return spacy_displacy.render(parsed, style=style, manual=True, page=True, jupyter=False, options={"colors": colors})


def _span_page_doc(nlp: Any, text: str, groups: Dict[str, List[Dict]], title: str, shown: Dict[str, str]) -> Dict:
    """One doc of displaCy's manual "span" style: its tokens (the pipeline's tokenizer) and
    the spans of `groups` (character offsets) over them, labelled with their probability."""
    doc = nlp.make_doc(text)
    spans = []
    for key, group in groups.items():
        for span in group:
            tokens = doc.char_span(span["start"], span["end"], alignment_mode="expand")
            label = f"{key}: " * (len(groups) > 1) + f"{span['label']} {span['confidence']:.2f}"
            shown[label] = span["label"]
            spans.append({"start_token": tokens.start, "end_token": tokens.end, "label": escape(label)})
    return {"text": text, "tokens": [t.text for t in doc], "spans": spans, "title": title}
