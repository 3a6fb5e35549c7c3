"""Check, before training, that the Hugging Face model a transformer config names can be loaded.

spacy-transformers loads the model at `nlp.initialize()`, deep inside `spacy train`: a name
that is neither a local folder nor in the Hugging Face cache, on a machine that cannot reach
the hub, fails there after a minute of hub retries and a long traceback. `check_config`
resolves every transformer name of a config first and fails with one clear message.

A trained pipeline needs none of this: it stores the weights, config and tokenizer of its
transformer and reloads with no network.
"""
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
HINT = (
    "point it at a local folder holding the model's config.json, weights and tokenizer files: "
    "--vars.transformer /path/to/model (spacy project run) or --paths.transformer /path/to/model "
    "(spacy train, train-teachers); or download it once where the hub can be reached, into the "
    "Hugging Face cache (HF_HOME) of this machine"
)


class TransformerModelError(ValueError):
    """A transformer model name that cannot be loaded."""


def config_transformers(config: Dict[str, Any]) -> List[Tuple[str, str, Dict]]:
    """(component, model name, tokenizer settings) of each `transformer` component of an
    interpolated config that builds its model from a name (not sourced from a pipeline)."""
    found = []
    for component, settings in config.get("components", {}).items():
        if settings.get("factory") != "transformer" or "source" in settings:
            continue
        model = settings.get("model", {})
        if "name" in model:
            found.append((component, str(model["name"]), dict(model.get("tokenizer_config", {}))))
    return found


def check_config(config_path: Union[str, Path], overrides: Optional[Dict[str, Any]] = None) -> List[str]:
    """Check every transformer model name of a training config (with its overrides, as
    `spacy train` would read it). Returns one line per transformer, e.g. for a log;
    raises TransformerModelError naming the model and how to point at a local folder."""
    from spacy.util import load_config

    config = load_config(config_path, overrides=dict(overrides or {}), interpolate=True)
    report = []
    for component, name, tokenizer_config in config_transformers(config):
        where = check_model_name(name, tokenizer_config=tokenizer_config, what=f"components.{component}.model.name")
        report.append(f"{component}: {name} ({where})")
    return report


def check_model_name(name: str, *, tokenizer_config: Optional[Dict] = None, what: str = "transformer model") -> str:
    """Where `name` loads from: "local folder", "Hugging Face cache" or "Hugging Face hub".

    A local folder must hold config.json, weights and a tokenizer. A hub name must be in
    the cache, or the hub must be reachable (not offline) and know it. Any other case
    raises TransformerModelError, without hub retries.
    """
    tokenizer_config = {k: v for k, v in (tokenizer_config or {}).items() if k != "local_files_only"}
    fail = f"{what} = {name!r}"
    if not name:
        raise TransformerModelError(f"{fail}: no model name; {HINT}")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise TransformerModelError(f"{fail}: the folder {path.resolve()} has no config.json; {HINT}")
        if not any((path / weights).is_file() for weights in WEIGHTS_FILES):
            raise TransformerModelError(
                f"{fail}: the folder {path.resolve()} holds no PyTorch weights ({', '.join(WEIGHTS_FILES)}); {HINT}"
            )
        _load_locally(str(path), tokenizer_config, fail)
        return "local folder"
    if path.exists():
        raise TransformerModelError(f"{fail}: {path} is a file, not a model folder; {HINT}")
    if _looks_like_path(name):
        raise TransformerModelError(f"{fail}: no such folder ({path.absolute()}); {HINT}")
    cached, reason = _in_cache(name, tokenizer_config)
    if cached:
        return "Hugging Face cache"
    if _offline():
        raise TransformerModelError(
            f"{fail}: not a local folder and not (completely) in the Hugging Face cache ({reason}), "
            f"and the hub is off (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set); {HINT}"
        )
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(name, timeout=10)
    except Exception as err:  # connection errors, unknown or private repositories
        raise TransformerModelError(
            f"{fail}: not a local folder, not in the Hugging Face cache, and the hub does not "
            f"serve it ({_first_line(err)}); {HINT}"
        ) from None
    return "Hugging Face hub"


def _looks_like_path(name: str) -> bool:
    """A hub name is "model" or "owner/model"; anything else is meant as a folder."""
    return name.startswith((".", "/", "~", "\\")) or name.count("/") > 1 or "\\" in name or os.path.isabs(name)


def _offline() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get("TRANSFORMERS_OFFLINE", ""), os.environ.get("HF_HUB_OFFLINE", ""))
    return constants.HF_HUB_OFFLINE or any(flag.upper() in {"1", "ON", "YES", "TRUE"} for flag in flags)


def _load_locally(name: str, tokenizer_config: Dict, fail: str) -> None:
    from transformers import AutoConfig, AutoTokenizer

    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        AutoTokenizer.from_pretrained(name, local_files_only=True, **tokenizer_config)
    except Exception as err:
        raise TransformerModelError(f"{fail}: cannot load its config or tokenizer ({_first_line(err)}); {HINT}") from None


def _in_cache(name: str, tokenizer_config: Dict) -> Tuple[bool, str]:
    """Whether config, tokenizer and weights of hub model `name` are all in the cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        _load_locally(name, tokenizer_config, "")
    except TransformerModelError:
        return False, "no config or tokenizer there"
    for weights in WEIGHTS_FILES:
        if isinstance(try_to_load_from_cache(name, weights), str):
            return True, ""
    return False, "no weights there"


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
