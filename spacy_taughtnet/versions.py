"""Which spacy-taughtnet a saved model goes with.

A pipe records the plugin version that saved it (its cfg's `plugin_version`). A release loads
the pipes of its own minor version and of the older ones of its major version (0.1.x pipes,
whose cfgs may lack the record or the `heads` setting, read as they were written); a pipe of
a newer minor version may hold what this release cannot read, and is refused. A packaged model
requires the minor version that trained it (`plugin_requirement`), the one it was tested with.
`is_plugin_requirement` finds that requirement among others.
"""
import re
from typing import Optional, Tuple

from .about import __version__
from .errors import ModelVersionError

PLUGIN = "spacy-taughtnet"


def minor_version(version: str) -> Tuple[int, int]:
    """(major, minor) of a version string such as "0.2.1" or "0.3.0rc1"."""
    major, minor = re.match(r"(\d+)\.(\d+)", version).groups()
    return int(major), int(minor)


def check_saved_version(saved: Optional[str], where: str) -> None:
    """Refuse a pipe saved by a newer minor version, or another major version, than this one
    (None: a cfg from before the record, 0.1.x, which loads)."""
    if saved is None:
        return
    (major, minor), (ours_major, ours_minor) = minor_version(saved), minor_version(__version__)
    if major == ours_major and minor <= ours_minor:
        return
    raise ModelVersionError(
        f"{where}: this model was saved by {PLUGIN} {saved}, but {PLUGIN} {__version__} is installed, "
        f"which loads models of {ours_major}.{ours_minor}.x and older {ours_major}.x releases; it loads with "
        f"{PLUGIN} {major}.{minor}.x: pip install '{PLUGIN}=={major}.{minor}.*' (or retrain the model)"
    )


def plugin_requirement(version: str) -> str:
    """A packaged model's requirement on the plugin: any release of the minor version `version`."""
    major, minor = minor_version(version)
    return f"{PLUGIN}>={major}.{minor}.0,<{major}.{minor + 1}.0"


def is_plugin_requirement(requirement: str) -> bool:
    """Whether a requirement line names this plugin (any spelling of its distribution name)."""
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower() == PLUGIN
