"""Benchmarks: each module measures one comparison and returns its results, which
`python -m spacy_taughtnet benchmark COMMAND` writes to benchmarks/NAME.json; report.py renders
BENCHMARKS.md from those files. The package's CLI imports cli.py only; the rest is imported by
the benchmark command that runs it."""
