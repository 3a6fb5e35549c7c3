"""The Hugging Face model a transformer config names: the overrides that set it, and a check,
before training, that it can be loaded.

spacy-transformers loads the model at `nlp.initialize()`, deep inside `spacy train`: a name
that is neither a local folder nor in the Hugging Face cache, on a machine that cannot reach
the hub, fails there after rounds of hub retries (about 25 s per file) and a long traceback.
`transformer_overrides` names the model (and its tokenizer's case) in a config's overrides;
`check_config` resolves every transformer name of a config first and fails at once with one
message that names the model and how to point at a local folder.

A trained pipeline needs none of this: it stores the weights, config and tokenizer of its
transformer and reloads with no network.
"""
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from .errors import ConfigError, TransformerModelError

WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
HINT = (
    "point it at a local folder holding the model's config.json, weights and tokenizer files: "
    "--vars.transformer /path/to/model (spacy project run), --transformer /path/to/model "
    "(train-teachers, train-student) or --paths.transformer /path/to/model (spacy train); or "
    "download it once where the hub can be reached, into the Hugging Face cache (HF_HOME) of this machine"
)


# The tokenizer case a transformer config can be given (do_lower_case False, True).
TRANSFORMER_CASES = ("cased", "uncased")


def transformer_overrides(config: Path, transformer: Optional[str], case: Optional[str] = None) -> Dict:
    """Overrides for a transformer config: {"paths.transformer": transformer} and, with
    case "cased" or "uncased", do_lower_case of each transformer component's tokenizer
    (an uncased model such as MiniLM needs "uncased"). A config without those settings
    (the CNN configs) gets none of them; empty values keep the config's."""
    from spacy.util import load_config

    if case and case not in TRANSFORMER_CASES:
        raise ConfigError(f"transformer case {case!r}: expected one of {', '.join(TRANSFORMER_CASES)} (or empty: the config's)")
    if not transformer and not case:
        return {}
    loaded = load_config(config, interpolate=False)
    components = [name for name, settings in loaded.get("components", {}).items() if settings.get("factory") == "transformer"]
    overrides: Dict = {}
    if transformer and "transformer" in loaded.get("paths", {}):
        overrides["paths.transformer"] = transformer
    for name in components if case else []:
        overrides[f"components.{name}.model.tokenizer_config.do_lower_case"] = case == "uncased"
    if not overrides:
        print(f"{config}: no transformer component; the transformer model and case options are not used")
    return overrides


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
    `spacy train` would read it). Returns one line per transformer, for the log;
    raises TransformerModelError naming the model and how to point at a local folder."""
    from spacy.util import load_config

    config = load_config(config_path, overrides=dict(overrides or {}), interpolate=True)
    report = []
    for component, name, tokenizer_config in config_transformers(config):
        where = check_model_name(name, tokenizer_config=tokenizer_config, component=component)
        report.append(f"components.{component}.model.name = {name!r}: {where}")
    return report


def check_model_name(name: str, *, tokenizer_config: Optional[Dict] = None, component: str = "transformer") -> str:
    """Where `name` loads from: "local folder", "Hugging Face cache" or "Hugging Face hub",
    followed by a warning when its tokenizer lowercases a cased vocabulary.

    A local folder must hold config.json, weights and a tokenizer. A hub name must be in
    the cache, or the hub must be reachable (not offline) and know it. Any other case
    raises TransformerModelError, without hub retries; so does a tokenizer that keeps the
    case of the text for an uncased vocabulary (capitalised words would be unknown to it).
    """
    tokenizer_config = {k: v for k, v in (tokenizer_config or {}).items() if k != "local_files_only"}
    fail = f"components.{component}.model.name = {name!r}"
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
        tokenizer = _load_locally(str(path), tokenizer_config, fail)
        return "local folder" + _check_casing(tokenizer, component, fail)
    if path.exists():
        raise TransformerModelError(f"{fail}: {path} is a file, not a model folder; {HINT}")
    if _looks_like_path(name):
        raise TransformerModelError(f"{fail}: no such folder ({path.absolute()}); {HINT}")
    tokenizer, reason = _from_cache(name, tokenizer_config)
    if tokenizer is not None:
        return "Hugging Face cache" + _check_casing(tokenizer, component, fail)
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


def _load_locally(name: str, tokenizer_config: Dict, fail: str) -> Any:
    """The tokenizer (as spacy-transformers will load it), after the config, from local files."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return AutoTokenizer.from_pretrained(name, local_files_only=True, **tokenizer_config)
    except Exception as err:
        raise TransformerModelError(f"{fail}: cannot load its config or tokenizer ({_first_line(err)}); {HINT}") from None


def _from_cache(name: str, tokenizer_config: Dict) -> Tuple[Any, str]:
    """(tokenizer, "") when config, tokenizer and weights of hub model `name` are all in
    the cache, else (None, what is missing)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        tokenizer = _load_locally(name, tokenizer_config, "")
    except TransformerModelError:
        return None, "no config or tokenizer there"
    for weights in WEIGHTS_FILES:
        if isinstance(try_to_load_from_cache(name, weights), str):
            return tokenizer, ""
    return None, "no weights there"


def _check_casing(tokenizer: Any, component: str, fail: str) -> str:
    """Compare the tokenizer's lowercasing with its vocabulary: raise for case kept with an
    uncased vocabulary, return a warning for lowercasing with a cased one, else ""."""
    pieces = [p[2:] if p.startswith("##") else p for p in tokenizer.get_vocab() if not (p.startswith(("[", "<")) and p.endswith(("]", ">")))]
    if not pieces:
        return ""
    cased_share = sum(any(c.isupper() for c in p) for p in pieces) / len(pieces)
    lowercases = tokenizer.tokenize("Protein KINASE") == tokenizer.tokenize("protein kinase")
    setting = f"components.{component}.model.tokenizer_config.do_lower_case"
    how = (
        "pass --vars.transformer_case {case} (spacy project run), --transformer-case {case} (train-teachers, "
        "train-student) or --{setting} {value} (spacy train), or set it to {value} in the config"
    )
    if cased_share < 0.005 and not lowercases:
        raise TransformerModelError(
            f"{fail}: its vocabulary is uncased, but its tokenizer keeps the case ({setting} = false): "
            f"capitalised words would be unknown word pieces; {how.format(setting=setting, value='true', case='uncased')}"
        )
    if cased_share > 0.02 and lowercases:
        return (
            f"; WARNING: its tokenizer lowercases the text but its vocabulary is cased ({cased_share:.0%} of the "
            f"word pieces have capitals); unless the model was trained on lowercased text, "
            f"{how.format(setting=setting, value='false', case='cased')}"
        )
    return ""


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    line = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return line if len(line) <= 200 else line[:197] + "..."
