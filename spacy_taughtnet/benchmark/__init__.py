"""Benchmarks: each module measures one comparison and returns its results, which
`python -m spacy_taughtnet benchmark COMMAND` writes to benchmarks/NAME.json; report.py renders
BENCHMARKS.md from those files. Nothing here is imported by the pipeline or its commands."""
