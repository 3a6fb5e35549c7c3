"""The project workflow end to end on the fixture corpora (five corpora of four types, one of
them new, two of them Disease):
`quick` = all + package + evaluate-package, then the ways users take the packaged model."""
import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from helpers import wheel_metadata
from spacy.util import load_config

from spacy_taughtnet.errors import ConfigError
from spacy_taughtnet.workflow import parse_corpora

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "corpora"
# 60 sentences, 7 of them also in the corpora (dropped from the transfer text)
TRANSFER = ROOT / "tests" / "fixtures" / "transfer"
CORPORA = ["Toy-disease-IOB", "Toy-chem-IOB", "Toy-gene-IOB", "Toy-species-IOB", "Toy-disease2-IOB"]
TYPES = ["Disease", "Chemical", "GENE", "Species"]
CORPUS_TYPES = TYPES + ["Disease"]
PACKAGE = "en_taughtnet_bio_test"


def run(args, cwd=ROOT, check=True):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    dest = tmp_path_factory.mktemp("quick")
    result = run([
        "scripts/quick.py", "--corpora", " ".join(CORPORA), "--corpora-dir", FIXTURES, "--dest", dest,
        "--transfer-dir", TRANSFER, "--transfer-sources", "Toy", "--transfer-limit", 0, "--limit", 0, "--teacher-steps", 100, "--student-steps", 200, "--eval-frequency", 25,
        "--name", PACKAGE[3:],
    ], check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield dest, result.stdout
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", PACKAGE], check=False)


@pytest.mark.workflow
def test_quick_workflow_outputs(quick_run):
    dest, stdout = quick_run
    run_dir = dest / "training"
    for name in CORPORA:
        for split in ("train", "dev", "test"):
            assert (run_dir / "corpus" / name / f"{split}.spacy").is_file()
        assert (run_dir / "teachers" / name / "model-best" / "config.cfg").is_file()
    manifest = json.loads((run_dir / "distributions" / "train" / "manifest.json").read_text())
    assert manifest["labels"] == TYPES
    assert manifest["n_docs"] == 5 * 40
    # paths relative to the distributions folder: the run folder can move
    assert manifest["docbin"]["path"] == "../../corpus/global/train.spacy"
    assert [t["path"] for t in manifest["teachers"]] == [f"../../teachers/{c}/model-best" for c in CORPORA]
    # the two Disease teachers are merged by corpus: each corpus's docs to its own teacher
    assert [t["settings"].get("merge") for t in manifest["teachers"]] == ["corpus", None, None, None, "corpus"]
    # `all` also distils the transfer text, without the corpora's sentences
    transfer = json.loads((run_dir / "distributions" / "transfer" / "manifest.json").read_text())
    assert transfer["labels"] == TYPES and transfer["n_docs"] == 53
    assert transfer["docbin"]["path"] == "../../transfer/train.spacy"
    # the default student (per-type heads, own targets) reads each type's own teacher columns
    # only, so the default distill runs no aggregation and stores no global columns
    student_ner = load_config(run_dir / "student" / "model-best" / "config.cfg")["components"]["ner"]
    assert (student_ner["heads"], student_ner["head_targets"]) == ("per_type", "own")
    # train-student learnt doc.ents's overlap preferences on devel and wrote them into the config
    learnt = json.loads((run_dir / "student" / "overlap_preferences.json").read_text())
    assert learnt["pipe"] == "ner" and student_ner["overlap_preferences"] == learnt["overlap_preferences"]
    assert set(learnt["dev_f1"]) == {"confidence", "preferences", "spans"}
    assert set(learnt["dev_f1"]["spans"]) == set(CORPORA)
    assert manifest["normalize"] == transfer["normalize"] == "none" and manifest["type_columns"]
    shard = numpy.load(run_dir / "distributions" / "train" / "shard-00000" / "probs.npy", mmap_mode="r")
    assert shard.shape[1] == 3 * len(TYPES)
    # `all` pretrains the tok2vec (one pass in quick) and every model starts from those weights
    pretrained = json.loads((run_dir / "pretrain" / "pretrain.json").read_text())
    assert pretrained["epochs"] == 1 and pretrained["docbins"] == ["training/corpus/global/train.spacy", "training/transfer/train.spacy"]
    for model in [run_dir / "teachers" / name / "model-best" for name in CORPORA] + [run_dir / "student" / "model-best"]:
        assert load_config(model / "config.cfg", interpolate=False)["paths"]["init_tok2vec"] == "training/pretrain/tok2vec.bin"
    teachers = json.loads((run_dir / "metrics" / "teachers.json").read_text())
    student = json.loads((run_dir / "metrics" / "student.json").read_text())
    # each corpus scored on its own test split, the two Disease corpora each on their own
    assert [(row["corpus"], row["entity_type"]) for row in student] == list(zip(CORPORA, CORPUS_TYPES))
    # The synthetic corpora are easy: every model must get them (nearly) right.
    for row in teachers + student:
        assert 0.9 <= row["f1"] <= 1.0, row
    assert "spacy.load works and finds every type" in stdout


@pytest.mark.workflow
def test_fit_overlaps_learns_the_students_preferences_again(quick_run, tmp_path):
    """`fit-overlaps` on a copy of the student whose preferences were changed learns on the
    devel union what train-student learnt, writes them into the copy's config and the record."""
    import shutil

    run_dir = quick_run[0] / "training"
    model = tmp_path / "model"
    shutil.copytree(run_dir / "student" / "model-best", model)
    config = load_config(model / "config.cfg", interpolate=False)
    changed = [["Species", "Chemical", "crossing"]]
    config["components"]["ner"]["overlap_preferences"] = changed
    config.to_disk(model / "config.cfg")
    record = tmp_path / "learnt.json"
    result = run(["-m", "spacy_taughtnet", "fit-overlaps", model, run_dir / "corpus" / "global" / "dev.spacy", "--record", record])
    assert "doc.ents overlap preferences learnt on devel" in result.stdout
    learnt = json.loads((run_dir / "student" / "overlap_preferences.json").read_text())
    assert learnt["overlap_preferences"] != changed
    assert json.loads(record.read_text())["overlap_preferences"] == learnt["overlap_preferences"]
    assert load_config(model / "config.cfg")["components"]["ner"]["overlap_preferences"] == learnt["overlap_preferences"]
    missing = run(["-m", "spacy_taughtnet", "fit-overlaps", tmp_path / "nowhere", run_dir / "corpus" / "global" / "dev.spacy"], check=False)
    assert missing.returncode != 0 and "nowhere: no saved pipeline here (no config.cfg)" in missing.stderr


@pytest.mark.workflow
def test_rerun_skips_up_to_date_steps(quick_run):
    dest, _ = quick_run
    overrides = ["--vars.corpora", " ".join(CORPORA), "--vars.corpora_dir", str(FIXTURES), "--vars.limit", "0",
                 "--vars.transfer_dir", str(TRANSFER), "--vars.transfer_sources", "Toy", "--vars.transfer_limit", "0",
                 "--vars.pretrain_epochs", "1", "--vars.teacher_max_steps", "100", "--vars.student_max_steps", "200",
                 "--vars.eval_frequency", "25", "--vars.student_eval_frequency", "25",
                 "--vars.name", PACKAGE[3:]]
    result = run(["-m", "spacy", "project", "run", "all", ".", *overrides], cwd=dest)
    for step in ("prepare", "prepare-transfer", "pretrain", "train-teachers", "distill-teachers", "distill-teachers-transfer", "train-student-transfer", "evaluate-all"):
        assert f"Skipping '{step}': nothing changed" in result.stdout


@pytest.mark.workflow
def test_package_requires_plugin(quick_run):
    dest, _ = quick_run
    assert "Requires-Dist: spacy-taughtnet" in wheel_metadata(dest, PACKAGE)


@pytest.mark.workflow
def test_installed_model_in_existing_pipeline(quick_run, tmp_path):
    student = spacy.load(PACKAGE)
    assert student.get_pipe("ner").labels == tuple(TYPES)
    text = "Patients with breast cancer received aspirin after BRCA1 testing in mice ."
    labels = {ent.label_ for ent in student(text).ents}
    assert labels == set(TYPES)

    # The packaged student is self-contained (its ner carries its own tok2vec): it goes into
    # another pipeline as it is, here one with a tok2vec of its own (spaCy's default, of the
    # student's width) and a rule-based entity pipe that sets its entities first; ours keeps
    # them (overwrite = false).
    assert student.pipe_names == ["ner"]
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec")
    ruler = nlp.add_pipe("entity_ruler")
    nlp.initialize()
    ruler.add_patterns([{"label": "PROCEDURE", "pattern": "testing"}])
    nlp.add_pipe("ner", source=student, name="bio_ner")
    assert nlp.pipe_names == ["tok2vec", "entity_ruler", "bio_ner"]
    ents = {(ent.text, ent.label_) for ent in nlp(text).ents}
    assert ("testing", "PROCEDURE") in ents
    assert {e for e in ents if e[1] != "PROCEDURE"} == {(e.text, e.label_) for e in student(text).ents if e.text != "testing"}
    assert {label for _, label in ents} == set(TYPES) | {"PROCEDURE"}
    nlp.to_disk(tmp_path / "combined")
    reloaded = spacy.load(tmp_path / "combined")
    assert {(e.text, e.label_) for e in reloaded(text).ents} == ents


@pytest.mark.workflow
def test_fetch_corpora_errors(tmp_path):
    script = ROOT / "scripts" / "fetch_corpora.py"
    missing = run([script, "--corpora", "No-such-IOB", "--source-dir", FIXTURES, "--dest", tmp_path / "assets"], check=False)
    assert missing.returncode != 0
    assert "No-such-IOB/train.tsv not found" in missing.stderr

    project = {"assets": [{"dest": "assets/Toy-chem-IOB/train.tsv", "url": "https://example.invalid/x",
                           "checksum": "0" * 32}]}
    srsly.write_yaml(tmp_path / "project.yml", project)
    bad = run([script, "--corpora", "Toy-chem-IOB", "--source-dir", FIXTURES, "--dest", tmp_path / "assets",
               "--project", tmp_path / "project.yml"], check=False)
    assert bad.returncode != 0
    assert "checksum mismatch for" in bad.stderr and "Toy-chem-IOB/train.tsv" in bad.stderr
    assert not (tmp_path / "assets" / "Toy-chem-IOB" / "train.tsv").exists()


@pytest.mark.workflow
def test_fetch_transfer_sources(tmp_path):
    script = ROOT / "scripts" / "fetch_corpora.py"
    project = {"assets": [{"dest": "assets/transfer/Src-IOB/train.tsv", "url": "https://example.invalid/x",
                           "checksum": "0" * 32}]}
    srsly.write_yaml(tmp_path / "project.yml", project)
    fetch = [script, "--dest", tmp_path / "assets", "--project", tmp_path / "project.yml"]
    # prebuilt text: nothing is fetched, but the folder must exist
    prebuilt = run([*fetch, "--transfer-sources", "Src-IOB", "--transfer-dir", TRANSFER])
    assert f"prebuilt in {TRANSFER}" in prebuilt.stdout and not (tmp_path / "assets").exists()
    missing_dir = run([*fetch, "--transfer-sources", "Src-IOB", "--transfer-dir", tmp_path / "nowhere"], check=False)
    assert missing_dir.returncode != 0 and "nowhere: no such folder" in missing_dir.stderr
    # a source listed in project.yml is downloaded (here: fails, naming the URL, writing nothing)
    offline = run([*fetch, "--transfer-sources", "Src-IOB"], check=False)
    assert offline.returncode != 0 and "could not download https://example.invalid/x" in offline.stderr
    assert not any((tmp_path / "assets").rglob("*.tsv"))
    # a source of one's own: its files under assets/transfer/ are taken as they are
    unknown = run([*fetch, "--transfer-sources", "Own-IOB"], check=False)
    assert unknown.returncode != 0 and "'Own-IOB' has no assets in project.yml" in unknown.stderr
    own = tmp_path / "assets" / "transfer" / "Own-IOB" / "train.tsv"
    own.parent.mkdir(parents=True)
    own.write_text("Aspirin\tO\n\n", encoding="utf8")
    assert "Own-IOB: present" in run([*fetch, "--transfer-sources", "Own-IOB"]).stdout


def test_project_assets_match_the_corpora_list():
    project = srsly.read_yaml(ROOT / "project.yml")
    dests = {asset["dest"] for asset in project["assets"]}
    for corpus in project["vars"]["corpora"].split():
        for split in ("train", "devel", "test"):
            assert f"assets/{corpus}/{split}.tsv" in dests
    for asset in project["assets"]:
        assert asset["url"].startswith("https://raw.githubusercontent.com/cambridgeltl/MTL-Bioinformatics-2016/")
        assert asset["url"].endswith(asset["dest"].replace("assets/transfer/", "assets/").replace("assets/", "data/", 1))
        assert len(asset["checksum"]) == 32
    # the six labelled corpora are assets, whichever the corpora var names
    for corpus in ("NCBI-disease-IOB", "BC5CDR-disease-IOB", "BC5CDR-chem-IOB", "BC2GM-IOB", "linnaeus-IOB", "AnatEM-IOB"):
        for split in ("train", "devel", "test"):
            assert f"assets/{corpus}/{split}.tsv" in dests


@pytest.mark.workflow
def test_teachers_step_reports_missing_data(tmp_path):
    result = run(["-m", "spacy_taughtnet", "train-teachers", tmp_path, ROOT / "configs" / "teacher.cfg",
                  "--corpora", "Toy-chem-IOB"], check=False)
    assert result.returncode == 1
    assert "Toy-chem-IOB/train.spacy: missing; run the prepare step first" in result.stderr
    assert not (tmp_path / "teachers").exists()


@pytest.mark.workflow
def test_prepare_limit_error_gives_advice_prepare_can_follow(tmp_path):
    # the first 2 train sentences of Toy-chem-IOB hold no Chemical entity
    result = run(["-m", "spacy_taughtnet", "prepare", FIXTURES, tmp_path, "--corpora", "Toy-chem-IOB", "--limit", 2], check=False)
    assert result.returncode == 1
    assert "Toy-chem-IOB/train.tsv: no B-/I- label in the first 2 sentences" in result.stderr
    assert "raise --limit" in result.stderr and "--entity-type" not in result.stderr
    assert not (tmp_path / "corpus").exists()
    # its first 3 test sentences hold none either: the type comes from the train split
    result = run(["-m", "spacy_taughtnet", "prepare", FIXTURES, tmp_path, "--corpora", "Toy-chem-IOB", "--limit", 3], check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "corpus" / "Toy-chem-IOB" / "test.spacy").is_file()


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", ".hidden", "global", "transfer"])
def test_corpus_names_must_be_plain_folder_names(name):
    with pytest.raises(ConfigError, match="plain folder name"):
        parse_corpora(f"Toy-chem-IOB {name}")


@pytest.mark.workflow
def test_corpus_name_outside_the_run_folder_is_refused(tmp_path):
    """`../x` would map ROOT/teachers/../x to ROOT/x, which the train-teachers step replaces."""
    root = tmp_path / "run"
    (root / "x").mkdir(parents=True)
    (root / "x" / "keep.txt").write_text("mine")
    result = run(["-m", "spacy_taughtnet", "train-teachers", root, ROOT / "configs" / "teacher.cfg",
                  "--corpora", "../x"], check=False)
    assert result.returncode == 1
    assert "corpus name '../x'" in result.stderr
    assert (root / "x" / "keep.txt").read_text() == "mine"


@pytest.mark.workflow
def test_student_labels_must_match_distributions(quick_run, tmp_path):
    """A student config whose labels disagree with the distributions fails before training."""
    dest, _ = quick_run
    run_dir = dest / "training"
    config = tmp_path / "student.cfg"
    text = (dest / "configs" / "student.cfg").read_text()
    config.write_text(text.replace("[initialize.components]\n", '[initialize.components]\n\n[initialize.components.ner]\nlabels = ["Disease","Chemical"]\n'))
    result = run(["-m", "spacy", "train", config, "--output", tmp_path / "student",
                  "--paths.train", run_dir / "corpus/global/train.spacy",
                  "--paths.dev", run_dir / "corpus/global/dev.spacy",
                  "--paths.distributions", run_dir / "distributions/train",
                  "--training.max_steps", "2"], check=False)
    assert result.returncode != 0
    assert "disagree with the teacher distributions' labels" in result.stderr + result.stdout
    assert not (tmp_path / "student" / "model-best").exists()


def test_a_budget_that_ends_before_the_first_evaluation_is_refused():
    """max_steps < eval_frequency: spacy train would keep the untrained model as model-best."""
    from spacy_taughtnet.workflow import check_schedule

    config = ROOT / "configs" / "student.cfg"
    with pytest.raises(ConfigError, match="training.max_steps 400 is less than training.eval_frequency 500"):
        check_schedule(config, {"training.max_steps": 400})
    check_schedule(config, {"training.max_steps": 400, "training.eval_frequency": 100})
    check_schedule(config, {"training.max_steps": 0})  # no step limit: patience ends the run
