"""The steps of the TaughtNet workflow over a list of corpora (called by project.yml); the
run folder's layout is layout.py's."""
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import spacy

from .atomic import atomic_path, remove_stale_temporaries
from .corpora import TYPE_KEY, build_union, iob_words, read_iob, write_docbin
from .digests import inputs_digest
from .distill import DEFAULT_BATCH_SIZE, DEFAULT_NORMALIZE
from .distributions import SHARD_DOCS
from .errors import ConfigError, CorpusError, UnknownEntityTypeError
from .layout import (
    PRETRAIN_RECORD,
    PRETRAIN_WEIGHTS,
    CorpusFolder,
    RunLayout,
    check_corpus_name,
)
from .preferences import fit_saved_pipeline, macro
from .ray_cluster import RayOptions, check_backend

if TYPE_CHECKING:
    from .teachers import TeachersSpec

SPLITS = {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}
# Beside a teacher: the digests.inputs_digest it was trained from. weasel's project.lock
# skips a whole command only; this skips each teacher whose inputs are unchanged. A teacher
# stamped by an older rule (inputs.md5) has no such file and is trained once more.
TEACHER_STAMP = "inputs.sha256"
# What train-student learnt for doc.ents where the student's types overlap (preferences.py)
OVERLAP_RECORD = "overlap_preferences.json"


def parse_corpora(corpora: str) -> List[str]:
    """Corpus names from a var such as "NCBI-disease-IOB BC5CDR-chem-IOB" (spaces or commas)."""
    names = [check_corpus_name(name) for name in corpora.replace(",", " ").split() if name]
    if not names:
        raise ConfigError("no corpora given")
    if len(set(names)) != len(names):
        raise ConfigError(f"a corpus is listed twice: {names}")
    return names


def prepare_corpora(assets: Path, root: Path, corpora: Sequence[str], *, limit: int = 0, repair: bool = False) -> List[str]:
    """Convert each corpus's train/devel/test TSV to DocBin and build the global union, in a
    temporary folder that replaces ROOT/corpus as a whole when complete.

    A corpus's entity type is read from its train split; its devel and test splits must
    have the same (a sample of them, with `limit`, may hold no entity). Returns the entity
    types in corpus order.
    """
    vocab = spacy.blank("en").vocab
    layout = RunLayout(root)
    with atomic_path(layout.corpus_folder.path, is_dir=True) as tmp:
        staged = CorpusFolder(tmp)
        for name in corpora:
            entity_type = None
            for split, filename in SPLITS.items():
                path = assets / name / filename
                if not path.is_file():
                    raise CorpusError(
                        f"{path}: missing; fetch the corpora with `spacy project run corpora` "
                        "(or pass --vars.corpora_dir DIR with a local copy)"
                    )
                try:
                    docs = read_iob(path, vocab, corpus=name, entity_type=entity_type, repair=repair, limit=limit)
                except UnknownEntityTypeError:
                    read = f"the first {limit} sentences" if limit else "the file"
                    advice = "raise --limit (--vars.limit)" if limit else "label its entities B-<type>/I-<type>"
                    raise CorpusError(
                        f"{path}: no B-/I- label in {read}, so the corpus's entity type is unknown; "
                        f"{advice} so that its train split holds entities"
                    ) from None
                entity_type = docs[0].user_data[TYPE_KEY]
                n_docs = write_docbin(docs, staged.split(name, split))
                print(f"{path} -> {layout.corpus(name, split)}: {n_docs} docs")
        types: List[str] = []
        for split in ("train", "dev"):
            docs, types = build_union([staged.split(name, split) for name in corpora], vocab)
            write_docbin(docs, staged.union(split))
            print(f"global {split}: {len(docs)} docs, types {types}")
    return types


def record_timing(root: Path, stage: str, seconds: float) -> None:
    """Store a stage's wall time (seconds) in ROOT/timings/<stage>.json."""
    with atomic_path(RunLayout(root).timings(stage)) as tmp:
        tmp.write_text(json.dumps({"stage": stage, "seconds": round(seconds, 1)}) + "\n")


def train_teachers(
    root: Path,
    corpora: Sequence[str],
    config: Path,
    *,
    use_gpu: int = -1,
    overrides: Optional[Dict] = None,
    transformer: Optional[str] = None,
    transformer_case: Optional[str] = None,
    spec: Optional["TeachersSpec"] = None,
) -> None:
    """Train one teacher per corpus with `spacy train` (selected on devel), or with `spec`
    (a teachers specification, teachers.py) the corpus teachers it lists, once per seed:
    seed 0 with the config's seeds, seed s > 0 with training.seed and system.seed s in
    ROOT/teachers/NAME-seed<s>.

    A teacher whose inputs (config, overrides, train and dev data, pretrained tok2vec weights)
    are unchanged since it was trained is kept, so a rerun after a failure resumes with the
    next teacher. Pretrained weights (init_tok2vec) are checked first
    (pretrain.init_tok2vec_path). Before the first teacher trains, the Hugging Face model of
    a transformer config is checked (hf_model.check_config): a name that cannot be loaded
    fails at once, with one message.
    transformer: the Hugging Face model (hub name or local folder) of a transformer config;
    transformer_case: "cased" or "uncased" to set its tokenizer's lowercasing.
    """
    from spacy.cli.train import train

    from .hf_model import check_config, transformer_overrides
    from .pretrain import init_tok2vec_path

    overrides = {**transformer_overrides(config, transformer, transformer_case), **(overrides or {})}
    check_schedule(config, overrides)
    weights = init_tok2vec_path(config, overrides)
    layout = RunLayout(root)
    runs = spec.corpus_teachers() if spec is not None else [(name, 0) for name in corpora]
    for name, seed in runs:  # also beside teachers that are up to date and not rewritten
        remove_stale_temporaries(layout.teacher(name, seed))
    checked = False
    for name, seed in runs:
        train_data, dev_data = layout.corpus(name, "train"), layout.corpus(name, "dev")
        output = layout.teacher(name, seed)
        paths = {"paths.train": str(train_data), "paths.dev": str(dev_data)}
        seeds = {"training.seed": seed, "system.seed": seed} if seed else {}
        for path in (train_data, dev_data):
            if not path.is_file():
                raise CorpusError(f"{path}: missing; run the prepare step first")
        digest = inputs_digest([config, train_data, dev_data, *([weights] if weights else [])], {**overrides, **seeds})
        stamp = output / TEACHER_STAMP
        if stamp.is_file() and stamp.read_text().strip() == digest:
            print(f"teacher {output.name}: up to date ({output})")
            continue
        if not checked:
            for line in check_config(config, overrides):
                print(line)
            checked = True
        print(f"teacher {output.name}: training -> {output}")
        start = time.perf_counter()
        with atomic_path(output, is_dir=True) as tmp:
            train(config, tmp, use_gpu=use_gpu, overrides={**overrides, **seeds, **paths})
            (tmp / TEACHER_STAMP).write_text(digest + "\n")
        record_timing(root, f"teacher-{output.name}", time.perf_counter() - start)


def check_schedule(config: Path, overrides: Dict) -> None:
    """Refuse a budget that ends before the first evaluation on devel: `spacy train` would
    keep the untrained model as model-best."""
    from spacy.util import load_config

    training = load_config(config, overrides=overrides, interpolate=True)["training"]
    max_steps, every = training["max_steps"], training["eval_frequency"]
    if 0 < max_steps < every:
        raise ConfigError(
            f"{config}: training.max_steps {max_steps} is less than training.eval_frequency {every}, so "
            "no trained model would ever be evaluated and model-best would be the untrained one; "
            "lower the eval frequency (--eval-frequency, project var eval_frequency or student_eval_frequency)"
        )


def train_student(
    root: Path,
    config: Path,
    *,
    distributions: Optional[Path] = None,
    output: Optional[Path] = None,
    use_gpu: int = -1,
    overrides: Optional[Dict] = None,
    transformer: Optional[str] = None,
    transformer_case: Optional[str] = None,
    transfer: bool = False,
) -> None:
    """Train the student on ROOT/corpus/global with `spacy train` (selected on the global
    devel set, each doc scored on its own type); without `distributions` it is the naive
    multi-type baseline (gold entities only, every other token O). transfer: also train on
    the transfer text (ROOT/transfer/train.spacy and ROOT/distributions/transfer; the config's
    train reader must be spacy-taughtnet.Corpus.v2). transformer, transformer_case: as for
    train_teachers; the model is checked before training, and so are pretrained weights."""
    from spacy.cli.train import train

    from .hf_model import check_config, transformer_overrides
    from .pretrain import init_tok2vec_path

    overrides = {**transformer_overrides(config, transformer, transformer_case), **(overrides or {})}
    check_schedule(config, overrides)
    init_tok2vec_path(config, overrides)
    layout = RunLayout(root)
    train_data, dev_data = layout.global_split("train"), layout.global_split("dev")
    output = output or layout.student
    paths = {"paths.train": str(train_data), "paths.dev": str(dev_data)}
    if distributions is not None:
        paths["paths.distributions"] = str(distributions)
    if transfer:
        if distributions is None:
            raise ConfigError("transfer text is distilled: it cannot train the naive (no teachers) baseline")
        paths["paths.transfer"] = str(layout.transfer_docs)
        paths["paths.transfer_distributions"] = str(layout.distributions("transfer"))
    for path in (train_data, dev_data, *([layout.transfer_docs] if transfer else [])):
        if not path.is_file():
            raise CorpusError(f"{path}: missing; run the prepare step first")
    for line in check_config(config, overrides):
        print(line)
    start = time.perf_counter()
    with atomic_path(output, is_dir=True) as tmp:
        train(config, tmp, use_gpu=use_gpu, overrides={**overrides, **paths})
        fit_overlaps(tmp / "model-best", [dev_data], tmp / OVERLAP_RECORD)
    record_timing(root, output.name, time.perf_counter() - start)


def fit_overlaps(model: Path, dev: Sequence[Path], record: Optional[Path] = None) -> Optional[Dict]:
    """Learn the saved student `model`'s overlap preferences on the DocBins `dev` (splits from
    `prepare` or `convert`: each doc records its type) and write them into its config.cfg;
    with `record`, write what was learnt and its devel F1 there. None (nothing written) for a
    student whose doc.ents has no overlaps to resolve (preferences.fit_saved_pipeline)."""
    if not (model / "config.cfg").is_file():
        raise ConfigError(f"{model}: no saved pipeline here (no config.cfg)")
    for path in dev:
        if not path.is_file():
            raise CorpusError(f"{path}: DocBin file not found")
    learnt = fit_saved_pipeline(model, dev)
    if learnt is None:
        print(f"{model}: its doc.ents has no overlapping types to resolve; nothing learnt")
        return None
    if record is not None:
        with atomic_path(record) as tmp:
            tmp.write_text(json.dumps(learnt, indent=2) + "\n", encoding="utf8")
    f1 = learnt["dev_f1"]
    print(f"doc.ents overlap preferences learnt on devel: {learnt['overlap_preferences']}")
    print(f"devel macro F1: doc.ents {macro(f1['preferences']) * 100:.2f} with them, {macro(f1['confidence']) * 100:.2f} "
          f"by confidence alone; span group {macro(f1['spans']) * 100:.2f}")
    return learnt


def pretrain_tok2vec(
    root: Path,
    config: Path,
    *,
    output: Optional[Path] = None,
    transfer: Optional[bool] = None,
    overrides: Optional[Dict] = None,
) -> Dict:
    """Pretrain the tok2vec of `config` (configs/pretrain.cfg, spaCy's pretraining) on
    ROOT/corpus/global/train.spacy and, with `transfer` (None: when it is there), the transfer
    text ROOT/transfer/train.spacy; write the weights and their record (pretrain.run_pretraining,
    plus the DocBins and an inputs digest) to `output` (default ROOT/pretrain) as a whole.
    Skipped when the record's inputs (config, overrides, DocBins) are those of this call.
    With pretraining.max_epochs 0 (pretraining off, as for the transformer configs) the
    output holds only the record, {"epochs": 0}. Returns the record."""
    from .pretrain import run_pretraining

    layout = RunLayout(root)
    output = Path(output) if output else layout.pretrain
    overrides = dict(overrides or {})
    if overrides.get("pretraining.max_epochs") == 0:
        print(f"pretrain: off (0 epochs); {output} holds no weights: train without init_tok2vec")
        record = {"epochs": 0}
        with atomic_path(output, is_dir=True) as tmp:
            (tmp / PRETRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf8")
        return record
    if transfer is None:
        transfer = layout.transfer_docs.is_file()
    docbins = [layout.global_split("train"), *([layout.transfer_docs] if transfer else [])]
    for path in docbins:
        if not path.is_file():
            step = "prepare-transfer" if path == layout.transfer_docs else "prepare"
            raise CorpusError(f"{path}: missing; run the {step} step first")
    digest = inputs_digest([config, *docbins], overrides)
    record_path = output / PRETRAIN_RECORD
    if record_path.is_file() and (output / PRETRAIN_WEIGHTS).is_file():
        record = json.loads(record_path.read_text(encoding="utf8"))
        if record.get("inputs_digest") == digest:
            print(f"pretrain: up to date ({output})")
            return record
    paths = {"paths.train": str(docbins[0]), "paths.transfer": str(docbins[1]) if transfer else None}
    print(f"pretrain: {' + '.join(map(str, docbins))} -> {output / PRETRAIN_WEIGHTS}")
    with atomic_path(output, is_dir=True) as tmp:
        record = run_pretraining(config, {**overrides, **paths}, tmp)
        record.update(docbins=[str(path) for path in docbins], inputs_digest=digest)
        (tmp / PRETRAIN_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf8")
    record_timing(root, "pretrain", record["seconds"])
    return record


def distill_teachers(
    root: Path, corpora: Sequence[str], output: Path, *, normalize: str = DEFAULT_NORMALIZE, batch_size: int = DEFAULT_BATCH_SIZE,
    spec: Optional["TeachersSpec"] = None, docbin: Optional[Path] = None, shard_docs: int = SHARD_DOCS,
    backend: str = "local", ray_options: Optional[RayOptions] = None,
) -> List[str]:
    """Run the teachers of `spec` (default: one per corpus, teachers.default_spec) over
    `docbin` (default ROOT/corpus/global/train.spacy; the transfer docs are the other one) and
    store their merged and aggregated distributions in `output`; records the stage's wall
    time. backend: "local" (this process) or "ray" (Ray actors, distill_ray.py, with
    `ray_options`, ray_cluster.RayOptions; default: a local Ray, one actor per CPU):
    the same shards and manifest. Returns the labels."""
    from .teachers import default_spec, load_teachers

    check_backend(backend)
    layout = RunLayout(root)
    spec = spec or default_spec(corpora)
    docbin = docbin or layout.global_split("train")
    start = time.perf_counter()
    if backend == "ray":
        from .distill_ray import dump_distributions_ray

        labels = dump_distributions_ray(
            docbin, spec, root, output, normalize=normalize, batch_size=batch_size, shard_docs=shard_docs,
            **({"ray_options": ray_options} if ray_options is not None else {}),
        )
    else:
        from .distill import dump_distributions

        teachers, labels = load_teachers(spec, root)
        labels = dump_distributions(
            docbin, teachers, output, labels=labels, merge=spec.merge, normalize=normalize,
            batch_size=batch_size, shard_docs=shard_docs,
        )
    record_timing(root, f"distill-{output.name}", time.perf_counter() - start)
    return labels


def prepare_transfer(
    root: Path,
    assets: Path,
    corpora: Sequence[str],
    *,
    sources: Sequence[str] = (),
    prebuilt: Optional[Path] = None,
    texts: Sequence[Path] = (),
    limit: int = 0,
) -> Dict[str, Dict[str, int]]:
    """Build the transfer text (ROOT/transfer/text) and its docs (ROOT/transfer/train.spacy).

    The sentences come from the IOB corpora `sources` under ASSETS/transfer/ (the project's
    extra assets), or, with `prebuilt`, from a folder of `*.txt.gz` built by the same rule
    (only the names in `sources`, without "-IOB", when given); plus a user's own documents
    `texts` (text, JSONL or PubTator, tokenised by spaCy). Sentences of any split of `corpora`
    (ASSETS/<corpus>/*.tsv) are dropped, as are duplicates. limit: at most N docs per source.
    Returns the sentence and token counts per source."""
    from .formats import detect_format
    from .transfer import (
        build_transfer_text,
        document_sentences,
        read_transfer_docs,
        source_name,
        text_sentences,
        transfer_files,
    )

    layout = RunLayout(root)
    exclude = [assets / check_corpus_name(name) / filename for name in corpora for filename in SPLITS.values()]
    for path in exclude:
        if not path.is_file():
            raise CorpusError(f"{path}: missing; transfer text is deduplicated against every split of the corpora")
    pairs = []
    if prebuilt:
        files = {source_name(path): path for path in transfer_files(prebuilt)}
        wanted = [source_name(Path(name)) for name in sources] or sorted(files)
        for name in wanted:
            if name not in files:
                raise CorpusError(f"{prebuilt}: no {name}.txt.gz (transfer sources: {', '.join(sources)})")
            pairs.append((name, text_sentences(files[name])))
    else:
        for name in sources:
            folder = assets / "transfer" / check_corpus_name(name)
            files = [folder / filename for filename in SPLITS.values() if (folder / filename).is_file()]
            if not files:
                raise CorpusError(
                    f"{folder}: no train/devel/test TSV of transfer source {name!r}; fetch them with "
                    "`spacy project assets --extra`, or give a folder of prebuilt *.txt.gz "
                    "(--vars.transfer_dir)"
                )
            pairs.extend((source_name(folder), iob_words(path)) for path in files)
    tokenizer = spacy.blank("en").tokenizer
    for path in texts:
        path = Path(path)
        pairs.append((path.name.split(".")[0], document_sentences(path, detect_format(path, None), tokenizer)))
    if not pairs:
        raise ConfigError("no transfer text sources given (sources, a prebuilt folder or texts)")
    counts = build_transfer_text(pairs, exclude, layout.transfer_text)
    vocab = spacy.blank("en").vocab
    n_docs = write_docbin(read_transfer_docs(transfer_files(layout.transfer_text), vocab, limit=limit), layout.transfer_docs)
    n_tokens = sum(c["tokens"] for c in counts.values())
    print(f"transfer text: {n_docs} docs ({n_tokens} tokens before the limit) -> {layout.transfer_docs}")
    return counts


def evaluate_models(root: Path, corpora: Sequence[str], *, student: Optional[Path] = None) -> List[Dict]:
    """Score each corpus's teacher and the student on that corpus's test split; write
    ROOT/metrics/teachers.json and ROOT/metrics/student.json."""
    from .evaluate import evaluate_corpus
    from .teachers import load_teacher

    layout = RunLayout(root)
    student = student or layout.student_model
    if not (student / "config.cfg").is_file():
        raise FileNotFoundError(f"{student}: no trained student here; run the train-student step first")
    rows: Dict[str, List[Dict]] = {"teachers": [], "student": []}
    student_nlp = spacy.load(student)
    for name, teacher in zip(corpora, layout.teacher_models(corpora)):
        test = layout.corpus(name, "test")
        teacher_nlp = load_teacher(teacher)[0]
        for group, model, nlp in (("teachers", f"teacher:{name}", teacher_nlp), ("student", "student", student_nlp)):
            row = {"model": model, **evaluate_corpus(nlp, test)}
            row["corpus"] = name
            rows[group].append(row)
    for group, group_rows in rows.items():
        with atomic_path(layout.metrics(group)) as tmp:
            tmp.write_text(json.dumps(group_rows, indent=2) + "\n", encoding="utf8")
    return rows["teachers"] + rows["student"]
