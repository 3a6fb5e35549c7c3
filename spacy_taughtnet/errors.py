"""One error hierarchy: every error meant for the user is a `TaughtNetError`, whose message
says what is wrong and where (file, line or doc) in one line. The CLI prints it and exits 1."""
from pathlib import Path
from typing import Union


class TaughtNetError(Exception):
    """Base of every error of this package that a user can fix."""


class ConfigError(TaughtNetError, ValueError):
    """An option, project var or setting with a value that cannot be used."""


class CorpusError(TaughtNetError, ValueError):
    """A corpus file or DocBin that cannot be used, with the file (and line) at fault."""


class DistributionsError(TaughtNetError, ValueError):
    """Teacher distributions that are missing, invalid or do not match their docs."""


class TeacherError(TaughtNetError, ValueError):
    """A teacher pipeline that is missing or cannot serve as a teacher."""


class TransformerModelError(TaughtNetError, ValueError):
    """A transformer model name that cannot be loaded."""


class AnnotateError(TaughtNetError):
    """An input, output or model of `annotate`/`render` that cannot be used."""


class RayBackendError(TaughtNetError):
    """`--backend ray` of annotate or distill-teachers that cannot run: Ray is not installed
    (the message names the command), or the cluster cannot be reached or cannot hold the actors."""


class BadRecordError(AnnotateError):
    """A line of an input that cannot be read (named by file and line)."""

    def __init__(self, path: Union[str, Path], line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


class TaughtNetWarning(UserWarning):
    """Something that works but that the user should know (e.g. a repaired IOB tag)."""


class ModelVersionError(TaughtNetError, ValueError):
    """A saved model written by a spacy-taughtnet version this one does not load."""


class UnknownEntityTypeError(CorpusError):
    """A corpus file, or the sentences of it that were read, with no B-/I- label and no type given."""


class ResumeError(AnnotateError):
    """An existing `annotate` output that this run cannot resume (its manifest names another
    model, other options or another input, or is missing)."""


class OutputLockedError(AnnotateError):
    """An `annotate` output that another run is writing (its lock file is held)."""


class WorkerError(AnnotateError):
    """A worker process of `annotate --n-process N` that died."""
