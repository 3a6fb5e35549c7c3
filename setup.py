from pathlib import Path

from setuptools import find_packages, setup

ABOUT = {}
exec(Path(__file__).with_name("spacy_taughtnet").joinpath("about.py").read_text(encoding="utf8"), ABOUT)

setup(
    name="spacy-taughtnet",
    version=ABOUT["__version__"],
    description="TaughtNet for spaCy: one multi-type biomedical NER pipe distilled from single-type teachers",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf8"),
    long_description_content_type="text/markdown",
    license="MIT",
    # the pinned torch (requirements.txt) needs 3.10
    python_requires=">=3.10",
    packages=find_packages(include=["spacy_taughtnet", "spacy_taughtnet.*"]),
    # PEP 561: the package's type hints are for type checkers of its users too
    package_data={"spacy_taughtnet": ["py.typed"]},
    install_requires=[
        "spacy>=3.8,<3.9",
        "thinc>=8.3,<8.4",
        "numpy>=1.19",
        "seqeval>=1.2.2",
        "typer>=0.9",
        "tqdm>=4.38",
        "srsly>=2.4",
    ],
    extras_require={
        "transformers": ["spacy-transformers==1.4.0", "transformers>=4.41,<4.53.3"],
        "test": ["pytest>=8,<9.2", "pytest-xdist>=3.5"],
        "ray": ["ray[data]>=2.9"],
    },
    entry_points={
        "spacy_factories": ["taughtnet_ner = spacy_taughtnet.component:make_taughtnet_ner"],
        "spacy_architectures": [
            "spacy-taughtnet.TokenTagger.v1 = spacy_taughtnet.model:build_token_tagger"
        ],
        "spacy_readers": [
            "spacy-taughtnet.Corpus.v1 = spacy_taughtnet.readers:create_corpus_reader",
            "spacy-taughtnet.Corpus.v2 = spacy_taughtnet.readers:create_corpus_reader_v2",
            "spacy-taughtnet.PretrainCorpus.v1 = spacy_taughtnet.pretrain:create_pretrain_corpus",
        ],
        "spacy_scorers": ["spacy-taughtnet.ner_scorer.v1 = spacy_taughtnet.scorer:make_ner_scorer"],
        "thinc_losses": [
            "spacy-taughtnet.DistillationLoss.v1 = spacy_taughtnet.loss:configure_distillation_loss"
        ],
        "spacy_displacy_colors": ["spacy-taughtnet = spacy_taughtnet.displacy:COLORS"],
        "console_scripts": ["spacy-taughtnet = spacy_taughtnet.cli:main"],
    },
)
