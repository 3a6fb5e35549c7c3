"""project.yml: its steps are named as the CLI commands they run, and the old step names stay
usable (as one-step workflows) until 0.3."""
import shlex
from pathlib import Path

import typer
from weasel.cli.run import project_run
from weasel.util import load_project_config
from weasel.util.validation import validate_project_commands

from spacy_taughtnet.cli import app

ROOT = Path(__file__).resolve().parent.parent
# The step names before 0.2 -> the commands they are now.
ALIASES = {
    "teachers": "train-teachers",
    "distill": "distill-teachers",
    "student": "train-student",
    "transfer-text": "prepare-transfer",
    "distill-transfer": "distill-teachers-transfer",
    "student-transfer": "train-student-transfer",
    "evaluate": "evaluate-all",
}


def project():
    config = load_project_config(ROOT)
    return {command["name"]: command for command in config["commands"]}, config["workflows"]


def test_every_workflow_step_is_a_command():
    config = load_project_config(ROOT)
    validate_project_commands(config)  # exits on a step that is no command, or a workflow named as one
    commands, workflows = project()
    assert all(step in commands for steps in workflows.values() for step in steps)


def test_old_step_names_are_aliases_of_one_command():
    commands, workflows = project()
    for old, new in ALIASES.items():
        assert workflows[old] == [new] and new in commands and old not in commands
    one_step = {name for name, steps in workflows.items() if len(steps) == 1 and name != "quick"}
    assert one_step == set(ALIASES)


def test_steps_are_named_as_the_cli_commands_they_run():
    """A step of the workflows running `python -m spacy_taughtnet COMMAND` is named COMMAND, or
    COMMAND-transfer where it runs COMMAND --transfer beside a COMMAND step."""
    cli_commands = set(typer.main.get_command(app).commands)
    commands, workflows = project()
    steps = {step for workflow in ("all", "all_union") for step in workflows[workflow]}
    checked = set()
    for name in steps:
        for line in commands[name]["script"]:
            words = shlex.split(line)
            if words[:3] == ["python", "-m", "spacy_taughtnet"]:
                assert words[3] in cli_commands
                checked.add(name)
                assert name == words[3] or (name == f"{words[3]}-transfer" and "--transfer" in words), line
    assert checked == steps - {"corpora", "transfer-assets"}  # those two run scripts/fetch_corpora.py


def test_an_old_name_runs_its_command(capsys):
    project_run(ROOT, "teachers", dry=True)
    out = capsys.readouterr().out
    assert "Running workflow 'teachers'" in out
    assert "spacy_taughtnet train-teachers training configs/teacher.cfg" in out
