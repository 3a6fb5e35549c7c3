"""Command line: `python -m spacy_taughtnet COMMAND` (also the `spacy-taughtnet` script)."""
import json
import signal
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .about import __version__
from .aggregate import DEFAULT_MERGE
from .annotate.runner import DEFAULT_CHUNK_CHARS
from .benchmark.cli import app as benchmark_app
from .cli_errors import user_errors
from .distill import DEFAULT_BATCH_SIZE, DEFAULT_NORMALIZE
from .distributions import SHARD_DOCS
from .errors import ConfigError
from .ray_cluster import (
    DEFAULT_CPUS_PER_ACTOR,
    DEFAULT_GPUS_PER_ACTOR,
    DEFAULT_SHARD_RECORDS,
    RayOptions,
    check_backend,
)
from .render import DEFAULT_LIMIT

app = typer.Typer(
    name="spacy-taughtnet",
    help="TaughtNet for spaCy: convert corpora, train teachers, distill, train the student, evaluate, annotate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(benchmark_app, name="benchmark")


def print_version(value: bool) -> None:
    if value:
        typer.echo(f"spacy-taughtnet {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                 help="Print the version of spacy-taughtnet and exit."),
) -> None:
    pass


# The commands are declared alike (decorators, typer options, a closing echo): the duplicates
# check pairs their declarations by shape; each runs its own library function.

# Commands that run `spacy train` take its extra `--section.key value` config overrides
# (and the SPACY_CONFIG_OVERRIDES environment variable), as `spacy train` does.
TRAIN_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
# Options of both annotate and render.
SPANS = typer.Option(False, "--spans", help=(
    "Also the scored span groups (taughtnet_ner's spans_key group: each type's own predictions, "
    "overlapping or not, with their probabilities): annotate writes them as each JSONL record's \"spans\" "
    "({key: [{start, end, label, text, confidence}]}), render draws them (displaCy's span style, "
    "each label with its probability) instead of doc.ents"))
THRESHOLD = typer.Option(None, min=0.0, max=1.0, help=(
    "Leave out entities and spans whose probability (confidence) is below this (0 to 1); "
    "entities that a pipe gives no probability for are kept"))
# Options of both train-teachers and train-student.
GPU_ID = typer.Option(-1, help="GPU id, -1 for CPU")
MAX_STEPS = typer.Option(None, help="Override training.max_steps")
EVAL_FREQUENCY = typer.Option(None, help="Override training.eval_frequency")
TRANSFORMER = typer.Option("", help=(
    "Hugging Face model of a transformer config: a hub name or a local folder (sets paths.transformer; "
    "ignored by configs without it, such as the CNN ones; empty: the config's)"
))
INIT_TOK2VEC = typer.Option("", help=(
    "Pretrained tok2vec weights to start from (`pretrain`: ROOT/pretrain/tok2vec.bin); sets "
    "paths.init_tok2vec, checked before training; empty: the config's"
))
TEACHERS_SPEC = typer.Option("", "--teachers", help=(
    "Teachers specification (YAML, see the README): corpus teachers with seeds, any spaCy NER "
    "pipeline with a label map; empty: one teacher per corpus"
))
TRANSFORMER_CASE = typer.Option("", help=(
    "cased | uncased: whether the transformer's tokenizer keeps the case (sets do_lower_case; an uncased "
    "model such as MiniLM or SciBERT-uncased needs uncased; ignored by the CNN configs; empty: the config's)"
))
# Options of distill and distill-teachers.
NORMALIZE = typer.Option(DEFAULT_NORMALIZE, help=(
    "none | sum | softmax: none stores each type's own columns only (what the default per-type student "
    "reads); sum or softmax also store TaughtNet's aggregated global distribution, with that normaliser "
    "(for joint heads and head_targets aggregated or mix)"
))
BATCH_SIZE = typer.Option(DEFAULT_BATCH_SIZE, help="Docs per batch")
SHARD_DOCS_OPTION = typer.Option(SHARD_DOCS, min=1, help="Docs per shard: a rerun after a failure or kill redoes only unfinished shards")
# Options of --backend ray, for annotate and distill-teachers (ray_cluster.RayOptions).
RAY_ADDRESS = typer.Option(None, "--address", help="Ray: an existing cluster's address (e.g. auto); default: $RAY_ADDRESS (set by ray job submit), else start a local Ray")
NUM_ACTORS = typer.Option(None, min=1, help="Ray: actors, each loading the model(s) once (default: as many as the cluster's CPUs, or GPUs, hold)")
CPUS_PER_ACTOR = typer.Option(DEFAULT_CPUS_PER_ACTOR, help="Ray: CPUs per actor (fractional allowed)")
GPUS_PER_ACTOR = typer.Option(DEFAULT_GPUS_PER_ACTOR, help="Ray: GPUs per actor (e.g. 1 for a transformer model)")


def _ray_options(address: Optional[str], num_actors: Optional[int], cpus_per_actor: float, gpus_per_actor: float) -> RayOptions:
    """The checked RayOptions."""
    return RayOptions(address=address, num_actors=num_actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor)


def _training_overrides(ctx: typer.Context, config: Path, settings: dict) -> dict:
    """Config overrides from the options (None: keep the config's value), updated with the
    extra `--section.key value` arguments; fails if the config is missing."""
    from spacy.cli._util import parse_config_overrides

    if not config.is_file():
        raise ConfigError(f"{config}: config not found")
    overrides = {key: value for key, value in settings.items() if value is not None}
    return {**overrides, **parse_config_overrides(list(ctx.args))}


@app.command()
@user_errors
def convert(
    input_path: Path = typer.Argument(..., help="IOB TSV file (token TAB label)"),
    output_path: Path = typer.Argument(..., help="DocBin file to write (.spacy)"),
    corpus: Optional[str] = typer.Option(None, help="Corpus name recorded on each doc (default: the file's folder name)"),
    entity_type: Optional[str] = typer.Option(None, help="Entity type, when the file has no B-/I- label"),
    repair: bool = typer.Option(False, help="Read an I- tag after O or another type as B- (with a warning) instead of failing"),
    limit: int = typer.Option(0, help="Keep the first N sentences (0: all)"),
) -> None:
    """Convert one single-type IOB TSV file to a DocBin."""
    import spacy

    from .corpora import read_iob, write_docbin

    docs = read_iob(input_path, spacy.blank("en").vocab, corpus=corpus, entity_type=entity_type, repair=repair, limit=limit)
    n_docs = write_docbin(docs, output_path)
    typer.echo(f"{input_path} -> {output_path}: {n_docs} docs")


@app.command()
@user_errors
def prepare(
    assets: Path = typer.Argument(..., help="Folder holding one folder per corpus with train.tsv, devel.tsv, test.tsv"),
    root: Path = typer.Argument(..., help="Run folder; writes ROOT/corpus/..."),
    corpora: str = typer.Option(..., help="Corpus folder names, space- or comma-separated"),
    limit: int = typer.Option(0, help="Keep the first N sentences of each file (0: all)"),
    repair: bool = typer.Option(False, help="Read an I- tag after O or another type as B- instead of failing"),
) -> None:
    """Convert every corpus's splits and build the global train/dev union."""
    from .workflow import parse_corpora, prepare_corpora

    prepare_corpora(assets, root, parse_corpora(corpora), limit=limit, repair=repair)


@app.command("train-teachers", context_settings=TRAIN_CONTEXT)
@user_errors
def train_teachers_command(
    ctx: typer.Context,
    root: Path = typer.Argument(..., help="Run folder (after `prepare`)"),
    config: Path = typer.Argument(..., help="Teacher training config"),
    corpora: str = typer.Option(..., help="Corpus folder names, space- or comma-separated"),
    gpu_id: int = GPU_ID,
    max_steps: Optional[int] = MAX_STEPS,
    eval_frequency: Optional[int] = EVAL_FREQUENCY,
    transformer: str = TRANSFORMER,
    transformer_case: str = TRANSFORMER_CASE,
    teachers: str = TEACHERS_SPEC,
    init_tok2vec: str = INIT_TOK2VEC,
) -> None:
    """Train one single-type teacher per corpus, or the corpus teachers of a teachers
    specification once per seed (skips teachers whose inputs are unchanged).
    Extra `--section.key value` arguments override the config, as for `spacy train`."""
    from .teachers import read_spec
    from .workflow import parse_corpora, train_teachers

    overrides = _training_overrides(ctx, config, {
        "training.max_steps": max_steps,
        "training.eval_frequency": eval_frequency,
        "paths.init_tok2vec": init_tok2vec or None,
    })
    train_teachers(
        root, parse_corpora(corpora), config, use_gpu=gpu_id, overrides=overrides,
        transformer=transformer, transformer_case=transformer_case,
        spec=read_spec(teachers) if teachers else None,
    )


@app.command("train-student", context_settings=TRAIN_CONTEXT)
@user_errors
def train_student_command(
    ctx: typer.Context,
    root: Path = typer.Argument(..., help="Run folder (after `prepare` and `distill-teachers`)"),
    config: Path = typer.Argument(..., help="Student training config"),
    distributions: Optional[Path] = typer.Option(None, help="Teacher distributions folder (default ROOT/distributions/train)"),
    no_teachers: bool = typer.Option(False, "--no-teachers", help="Train on gold entities only (the naive baseline)"),
    output: Optional[Path] = typer.Option(None, help="Output folder (default ROOT/student)"),
    lambda_: Optional[float] = typer.Option(None, "--lambda", help="Weight of the teacher term (default: the config's)"),
    temperature: Optional[float] = typer.Option(None, help="Distillation temperature (default: the config's)"),
    gpu_id: int = GPU_ID,
    max_steps: Optional[int] = MAX_STEPS,
    eval_frequency: Optional[int] = EVAL_FREQUENCY,
    transformer: str = TRANSFORMER,
    transformer_case: str = TRANSFORMER_CASE,
    transfer: bool = typer.Option(False, "--transfer/--no-transfer", help="Also train on the transfer text (prepare-transfer, distill-teachers --transfer); the mix: --corpora.train.labelled_repeats N"),
    init_tok2vec: str = INIT_TOK2VEC,
) -> None:
    """Train the multi-type student on ROOT/corpus/global with the teachers' distributions.
    Extra `--section.key value` arguments override the config, as for `spacy train`."""
    from .layout import RunLayout
    from .workflow import train_student

    overrides = _training_overrides(ctx, config, {
        "components.ner.loss.lambda_": lambda_,
        "components.ner.loss.temperature": temperature,
        "training.max_steps": max_steps,
        "training.eval_frequency": eval_frequency,
        "paths.init_tok2vec": init_tok2vec or None,
    })
    if not no_teachers:
        distributions = distributions or RunLayout(root).distributions("train")
    train_student(
        root, config, distributions=distributions, output=output, use_gpu=gpu_id,
        overrides=overrides, transformer=transformer, transformer_case=transformer_case, transfer=transfer,
    )


@app.command("pretrain", context_settings=TRAIN_CONTEXT)
@user_errors
def pretrain_command(
    ctx: typer.Context,
    root: Path = typer.Argument(..., help="Run folder (after `prepare`, and `prepare-transfer` for the transfer text)"),
    config: Path = typer.Argument(..., help="Pretraining config (configs/pretrain.cfg)"),
    transfer: Optional[bool] = typer.Option(None, "--transfer/--no-transfer", help="Also read the transfer text ROOT/transfer/train.spacy (default: when it is there)"),
    output: Optional[Path] = typer.Option(None, help="Output folder (default ROOT/pretrain)"),
    max_epochs: Optional[int] = typer.Option(None, min=0, help="Override pretraining.max_epochs (passes over the docs; 0: pretraining off, the output holds only pretrain.json)"),
    seed: Optional[int] = typer.Option(None, help="Random seed (sets system.seed; default: the config's)"),
) -> None:
    """Pretrain the tok2vec with spaCy's pretraining (the characters objective of
    configs/pretrain.cfg) on the union's train split and the transfer text; writes
    tok2vec.bin (for --init-tok2vec) and pretrain.json, skipped when its inputs are unchanged.
    Extra `--section.key value` arguments override the config, as for `spacy pretrain`."""
    from .layout import PRETRAIN_WEIGHTS, RunLayout
    from .workflow import pretrain_tok2vec

    overrides = _training_overrides(ctx, config, {"pretraining.max_epochs": max_epochs, "system.seed": seed})
    output = output or RunLayout(root).pretrain
    record = pretrain_tok2vec(root, config, output=output, transfer=transfer, overrides=overrides)
    if not record["epochs"]:
        return
    for epoch, loss in record["loss_per_word"].items():
        typer.echo(f"epoch {epoch}: loss per word {loss}")
    typer.echo(
        f"{record['words']} words in {record['seconds']} s ({record['words_per_second']} words/s); "
        f"train with --init-tok2vec {output / PRETRAIN_WEIGHTS}"
    )


@app.command()
@user_errors
def distill(
    docbin: Path = typer.Argument(..., help="Global DocBin (e.g. ROOT/corpus/global/train.spacy)"),
    output: Path = typer.Argument(..., help="Distributions folder to write"),
    teachers: List[Path] = typer.Option(..., "--teacher", help="A trained single-type teacher pipeline; repeat, in global label order (several of one type are merged)"),
    merge: str = typer.Option(DEFAULT_MERGE, help="Teachers of one type: product (of experts) or mean (corpus, each corpus's docs to its own teachers, needs distill-teachers)"),
    normalize: str = NORMALIZE,
    batch_size: int = BATCH_SIZE,
    shard_docs: int = SHARD_DOCS_OPTION,
) -> None:
    """Run every teacher over a DocBin, aggregate, and store the distributions."""
    from .distill import dump_distributions

    labels = dump_distributions(
        docbin, teachers, output, merge=merge, normalize=normalize, batch_size=batch_size, shard_docs=shard_docs
    )
    typer.echo(f"{docbin} -> {output}: labels {labels}, normalize={normalize}")


@app.command("distill-teachers")
@user_errors
def distill_teachers(
    root: Path = typer.Argument(..., help="Run folder with corpus/global and teachers/"),
    corpora: str = typer.Option(..., help="Corpus folder names, in the order of the global labels"),
    normalize: str = NORMALIZE,
    batch_size: int = BATCH_SIZE,
    output: Optional[Path] = typer.Option(None, help="Distributions folder (default ROOT/distributions/train, or ROOT/distributions/transfer with --transfer)"),
    teachers: str = TEACHERS_SPEC,
    transfer: bool = typer.Option(False, "--transfer", help="Distill the transfer text (ROOT/transfer/train.spacy, from prepare-transfer) instead of the union"),
    shard_docs: int = SHARD_DOCS_OPTION,
    backend: str = typer.Option("local", help="local (this process) or ray (Ray actors on a local or existing cluster, each writing whole shards)"),
    address: Optional[str] = RAY_ADDRESS,
    num_actors: Optional[int] = NUM_ACTORS,
    cpus_per_actor: float = CPUS_PER_ACTOR,
    gpus_per_actor: float = GPUS_PER_ACTOR,
) -> None:
    """`distill` for ROOT/corpus/global/train.spacy (or the transfer text) with the teachers
    of ROOT/teachers, or those of a teachers specification."""
    from .layout import RunLayout
    from .teachers import read_spec
    from .workflow import distill_teachers as run
    from .workflow import parse_corpora

    layout = RunLayout(root)
    docbin = layout.transfer_docs if transfer else layout.global_split("train")
    output = output or layout.distributions("transfer" if transfer else "train")
    spec = read_spec(teachers) if teachers else None
    ray_options = _ray_options(address, num_actors, cpus_per_actor, gpus_per_actor) if backend == "ray" else None
    labels = run(
        root, parse_corpora(corpora), output, normalize=normalize, batch_size=batch_size, spec=spec, docbin=docbin,
        shard_docs=shard_docs, backend=backend, ray_options=ray_options,
    )
    typer.echo(f"{docbin} -> {output}: labels {labels}, normalize={normalize}")


@app.command("prepare-transfer")
@user_errors
def prepare_transfer(
    assets: Path = typer.Argument(..., help="Folder of the corpora (ASSETS/<corpus>/*.tsv) and of the transfer sources (ASSETS/transfer/<source>/*.tsv)"),
    root: Path = typer.Argument(..., help="Run folder; writes ROOT/transfer/"),
    corpora: str = typer.Option(..., help="Corpus folder names: their sentences are never transfer text"),
    sources: str = typer.Option("", help="Transfer source corpora (IOB folders under ASSETS/transfer, in order), space- or comma-separated"),
    prebuilt: str = typer.Option("", help="A folder of prebuilt *.txt.gz transfer text to take instead of building it from ASSETS/transfer (empty: build)"),
    text: List[Path] = typer.Option([], help="A file of your own documents (text: one a line; .jsonl; .pubtator); repeat"),
    limit: int = typer.Option(0, help="Keep at most N sentences of each source (0: all)"),
) -> None:
    """Build the transfer text (unlabelled sentences the teachers annotate for the student)."""
    from .workflow import parse_corpora
    from .workflow import prepare_transfer as run

    names = [name for name in sources.replace(",", " ").split() if name]
    counts = run(root, assets, parse_corpora(corpora), sources=names, prebuilt=Path(prebuilt) if prebuilt else None, texts=text, limit=limit)
    for name, count in counts.items():
        typer.echo(f"{name}: {count['sentences']} sentences, {count['tokens']} tokens")


@app.command()
@user_errors
def evaluate(
    model: str = typer.Argument(..., help="Pipeline name or path"),
    docbins: List[Path] = typer.Argument(..., help="Single-type DocBin test files"),
    output: Optional[Path] = typer.Option(None, help="Write the scores as JSON here"),
    entity_type: List[str] = typer.Option([], "--entity-type", help=(
        "Entity type the gold annotates, for a DocBin without spacy-taughtnet's type record "
        "(e.g. from spacy convert); repeat for several; other predicted types count as O"
    )),
) -> None:
    """Score a pipeline on single-type corpora (seqeval, entity level, own type only)."""
    import spacy

    from .atomic import atomic_path
    from .evaluate import EVALUATE_COLUMNS, evaluate_corpus, format_table

    nlp = spacy.load(model)
    rows = [{"model": model, **evaluate_corpus(nlp, path, entity_types=entity_type or None)} for path in docbins]
    typer.echo(format_table(rows, EVALUATE_COLUMNS))
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf8")


@app.command("fit-overlaps")
@user_errors
def fit_overlaps_command(
    model: Path = typer.Argument(..., help="Saved student pipeline folder (e.g. ROOT/student/model-best)"),
    dev: List[Path] = typer.Argument(..., help="Devel DocBins from `prepare` or `convert` (each doc records its type): ROOT/corpus/global/dev.spacy, or one per corpus"),
    record: Optional[Path] = typer.Option(None, help="Also write what was learnt, with its devel F1, here (JSON)"),
) -> None:
    """Learn again which type wins in doc.ents where the student's spans of two types overlap
    (its overlap_preferences), on the DEV DocBins, each corpus weighing equally, and write them
    into MODEL's config. train-student does this on the run's devel union; run it on a student
    trained before the rule changed, or on devel corpora of your own."""
    from .workflow import fit_overlaps

    fit_overlaps(model, dev, record)


@app.command("evaluate-all")
@user_errors
def evaluate_all(
    root: Path = typer.Argument(..., help="Run folder"),
    corpora: str = typer.Option(..., help="Corpus folder names"),
    student: Optional[Path] = typer.Option(None, help="Student pipeline (default ROOT/student/model-best)"),
) -> None:
    """Score every teacher and the student on each corpus's test split; write ROOT/metrics/."""
    from .evaluate import EVALUATE_COLUMNS, format_table
    from .workflow import evaluate_models, parse_corpora

    rows = evaluate_models(root, parse_corpora(corpora), student=student)
    typer.echo(format_table(rows, EVALUATE_COLUMNS))


@app.command()
@user_errors
def annotate(
    model: str = typer.Argument(..., help="Pipeline name or path"),
    input_path: Path = typer.Argument(..., help=(
        "Documents: text (one per line), JSONL ({\"id\", \"text\"}), PubTator or PubMed XML, may be gzipped; a file, "
        "a folder (its files with those extensions, in sorted order) or a quoted glob ('data/pubmed*.xml.gz', sorted)"
    )),
    output_path: Path = typer.Argument(..., help="Annotations to write: JSONL or PubTator; an existing one is resumed"),
    input_format: Optional[str] = typer.Option(None, help="text, jsonl, pubtator or pubmed (default: from the extension .txt, .jsonl, .pubtator, .xml, each optionally .gz)"),
    output_format: Optional[str] = typer.Option(None, help="jsonl or pubtator (default: from the extension .jsonl, .pubtator)"),
    batch_size: int = typer.Option(64, min=1, help="Docs (or pieces of long docs) per batch"),
    n_process: int = typer.Option(1, help="Processes for nlp.pipe (-1: one per CPU)"),
    chunk_chars: int = typer.Option(DEFAULT_CHUNK_CHARS, min=1, help="Annotate a longer document in pieces of at most this many characters, cut at whitespace (memory: batch size x this)"),
    text: bool = typer.Option(True, "--text/--no-text", help="Write each document's text into JSONL output"),
    spans: bool = SPANS,
    threshold: Optional[float] = THRESHOLD,
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Log an unreadable input line to stderr and go on, instead of stopping"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh instead of resuming an existing output (which stays until the new one is complete)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar (docs/s, words/s) on stderr"),
    backend: str = typer.Option("local", help="local (this machine, nlp.pipe) or ray (Ray actors on a local or existing cluster; OUTPUT may be a folder of parts)"),
    address: Optional[str] = RAY_ADDRESS,
    num_actors: Optional[int] = NUM_ACTORS,
    cpus_per_actor: float = CPUS_PER_ACTOR,
    gpus_per_actor: float = GPUS_PER_ACTOR,
    shard_records: int = typer.Option(DEFAULT_SHARD_RECORDS, min=1, help="Ray: documents per shard, within one input file (one part file each; the unit of resuming)"),
) -> None:
    """Annotate documents with a pipeline; rerun the same command to resume an interrupted run
    (OUTPUT.manifest.json beside the output says which model, options and input wrote it)."""
    from .annotate import annotate_file

    if n_process == 0 or n_process < -1:
        raise ConfigError(f"--n-process must be -1 or at least 1, got {n_process}")
    check_backend(backend)
    if backend == "ray" and n_process != 1:
        raise ConfigError("--n-process is for --backend local; with --backend ray use --num-actors")
    terminate = signal.signal(signal.SIGTERM, signal.default_int_handler)  # a job scheduler's stop: as Ctrl-C
    try:
        if backend == "ray":
            from .annotate.ray_backend import annotate_ray

            summary = annotate_ray(
                model, input_path, output_path, input_format=input_format, output_format=output_format,
                batch_size=batch_size, chunk_chars=chunk_chars, include_text=text, spans=spans, threshold=threshold,
                skip_bad=skip_bad, overwrite=overwrite, progress=progress, shard_records=shard_records,
                ray_options=_ray_options(address, num_actors, cpus_per_actor, gpus_per_actor),
            )
        else:
            summary = annotate_file(
                model, input_path, output_path, input_format=input_format, output_format=output_format,
                batch_size=batch_size, n_process=n_process, chunk_chars=chunk_chars, include_text=text,
                spans=spans, threshold=threshold, skip_bad=skip_bad, overwrite=overwrite, progress=progress,
            )
    except KeyboardInterrupt:
        then = (f"an --overwrite run replaces {output_path} only when complete; rerun the same command to start again"
                if overwrite else f"{output_path} holds whole records only; rerun the same command to resume")
        typer.secho(f"Interrupted: {then}", err=True)
        raise typer.Exit(130)
    finally:
        if terminate is not None:  # None: a handler set outside Python, which cannot be put back
            signal.signal(signal.SIGTERM, terminate)
    skipped = f", {summary.bad_lines} bad input lines skipped" if summary.bad_lines else ""
    typer.echo(f"{input_path} -> {output_path}: {summary.written} docs written, {summary.resumed} already there{skipped}", err=True)


@app.command()
@user_errors
def render(
    model: str = typer.Argument(..., help="Pipeline name or path"),
    input_path: Path = typer.Argument(..., help="Sample texts: text (one per line), JSONL or PubTator"),
    output_path: Path = typer.Argument(..., help="HTML page to write"),
    input_format: Optional[str] = typer.Option(None, help="text, jsonl or pubtator (default: from the extension)"),
    limit: int = typer.Option(DEFAULT_LIMIT, min=0, help="Render the first N documents (0: all)"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Log an unreadable input line to stderr and go on"),
    spans: bool = SPANS,
    threshold: Optional[float] = THRESHOLD,
) -> None:
    """Write an HTML page (displaCy) of the pipeline's entities, or its scored span groups, on sample texts."""
    from .annotate import load_pipeline
    from .atomic import atomic_path
    from .errors import AnnotateError
    from .formats import detect_format, raise_bad, read_records
    from .render import check_not_input, render_html

    def log_bad(err: Exception) -> None:
        typer.echo(f"Skipped {err}", err=True)

    fmt = detect_format(input_path, input_format)
    if not input_path.is_file():
        raise AnnotateError(f"{input_path}: input file not found")
    check_not_input(output_path, input_path)
    nlp = load_pipeline(model)
    html = render_html(nlp, read_records(input_path, fmt, log_bad if skip_bad else raise_bad), limit=limit, spans=spans, threshold=threshold)
    with atomic_path(output_path) as tmp:
        tmp.write_text(html, encoding="utf8")
    typer.echo(f"{input_path} -> {output_path}", err=True)


def main() -> None:
    app(prog_name="spacy-taughtnet")


if __name__ == "__main__":
    sys.exit(main())
