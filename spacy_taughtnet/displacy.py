"""displaCy colours for the biomedical entity types.

`COLORS` is registered under spaCy's `spacy_displacy_colors` entry point (see setup.py),
so `spacy.displacy.render(..., style="ent")` colours these types in any environment where
the package is installed. spaCy imports this module whenever it renders entities: keep it
free of heavy imports.

displaCy matches labels case-insensitively (it upper-cases them). The labels of a
`taughtnet_ner` pipe come from its training corpora, so an unknown label gets a stable
colour from `color_for` (the `render` command passes those through displaCy's options).
"""
import zlib
from typing import Dict, Iterable

# One colour per type, shared by the names the common corpora use for it.
_DISEASE, _CHEMICAL, _GENE, _SPECIES, _ANATOMY = "#ff9e9e", "#8fd3fe", "#b8e986", "#ffd27f", "#e3b5ff"

COLORS: Dict[str, str] = {
    "Disease": _DISEASE,
    "DiseaseOrPhenotypicFeature": _DISEASE,
    "Chemical": _CHEMICAL,
    "ChemicalEntity": _CHEMICAL,
    "Drug": _CHEMICAL,
    "GENE": _GENE,
    "GeneOrGeneProduct": _GENE,
    "Protein": _GENE,
    "Species": _SPECIES,
    "OrganismTaxon": _SPECIES,
    "Anatomy": _ANATOMY,
}

# Colours for labels not in COLORS, picked by a stable hash of the label.
FALLBACK_PALETTE = (
    "#c5b3f6", "#f7b6e5", "#a6e3d8", "#f9c89b", "#d4e6a5",
    "#b4c8f5", "#f2a7a7", "#e5d3a2", "#9edbb8", "#d9b8f0",
)

_BY_UPPER = {label.upper(): color for label, color in COLORS.items()}


def color_for(label: str) -> str:
    """The colour of an entity label: COLORS (case-insensitive), else a fallback colour
    that depends only on the label, so it is the same on every page and every run."""
    known = _BY_UPPER.get(label.upper())
    if known is not None:
        return known
    return FALLBACK_PALETTE[zlib.crc32(label.upper().encode("utf8")) % len(FALLBACK_PALETTE)]


def colors_for(labels: Iterable[str]) -> Dict[str, str]:
    """displaCy's `colors` option for these labels."""
    return {label: color_for(label) for label in labels}
