"""Pipeline configuration: which strategy fills each slot, and with what options.

A config file is TOML (JSON is accepted too) with one table per slot::

    extends = "rtx4090"              # start from a built-in profile (optional)

    [splitter]
    name = "nltk"

    [estimator]
    name = "chatterbox"
    options = { tokenizer = "/models/chatterbox/tokenizer.json" }

    [planner]
    target_tokens = 80

Merging onto the profile is key by key. A slot table that names a *different*
strategy replaces the profile's options for that slot; one that keeps the name
merges its options into the profile's. ``options`` are validated by the chosen
strategy's own pydantic model once plugins are loaded (:func:`resolve_config`).
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError, DuplicateStrategyError, SeqoptError
from .languages import normalized_language, run_language
from .planner import MODEL_MAX_TOKENS, PlannerSettings
from .plugins import PluginHost
from .strategies import SLOTS
from .validation import MAX_ERROR_LINES, cap_lines, error_lines, options_error, short_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_PROFILE = "rtx4090"
#: The engine a config without an ``[engine]`` table gets.
DEFAULT_ENGINE = "chatterbox"
#: ``[synthesis]`` keys that were the Chatterbox engine's before it became a slot:
#: found there, they are moved to ``[engine.options]`` with a DeprecationWarning.
LEGACY_ENGINE_KEYS = ("checkpoint", "voice", "exaggeration", "temperature", "top_p", "min_p",
                      "repetition_penalty", "cfg_weight", "max_new_tokens",
                      "speech_tokens_per_text_token", "benchmark_tokens_per_text_token",
                      "length_guard", "watermark")

#: Deepest nesting of tables and arrays within each other a config may have. The
#: built-in options need 5 (``attention.options.aligned_heads``' pairs); deeper
#: input is refused before anything walks it recursively.
MAX_CONFIG_DEPTH = 32


# --- bounded numbers: every refusal names the whole allowed range ---------------


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _order_error(low_key: str, low: float, high_key: str, high: float, why: str | None = None) -> str:
    """The message for two settings out of order (``low_key`` must not exceed ``high_key``)."""
    return (f"{low_key} ({_num(low)}) must not exceed {high_key} ({_num(high)}): "
            + (f"{why}; " if why else "")
            + f"lower {low_key} to {_num(high)} or less, or raise {high_key} to {_num(low)} or more")


def _range_text(lo: float, hi: float, unit: str, *, lo_open: bool, whole: bool) -> str:
    kind = "a whole number" if whole else "a finite number"
    span = f"above {_num(lo)} and at most {_num(hi)}" if lo_open else f"from {_num(lo)} to {_num(hi)}"
    return f"{kind} {span}{f' ({unit})' if unit else ''}"


def _bounded(lo: float, hi: float, unit: str = "", *, lo_open: bool = False,
             whole: bool = False, why: str = "") -> Any:
    """A float (``whole``: an int) within ``[lo, hi]`` (``lo_open``: ``(lo, hi]``), never
    nan or infinite. A refused value's message states the whole range, then ``why``."""
    allowed = _range_text(lo, hi, unit, lo_open=lo_open, whole=whole)

    def refuse(value: Any) -> ValueError:
        return ValueError(f"must be {allowed}, got {value!r}{f'; {why}' if why else ''}")

    def before(value: Any) -> Any:
        if isinstance(value, bool):  # pydantic would read true as 1
            raise refuse(value)
        return value

    def after(value: float) -> float:
        if not (math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi):
            raise refuse(value)
        return value

    schema = {"exclusiveMinimum" if lo_open else "minimum": lo, "maximum": hi}
    return Annotated[int if whole else float, BeforeValidator(before), AfterValidator(after),
                     Field(json_schema_extra=schema)]


#: Largest ``synthesis.seed``. The engine derives the vocoder's seed for a segment as
#: ``(seed * 7919 + segment) * 1_000_003 + chunk`` and torch takes seeds below 2**64,
#: so seeds above about 2.3e9 overflow; 2**31 - 1 leaves room for 10**12 segments.
MAX_SEED = 2**31 - 1
#: Largest pause after a segment, in milliseconds.
MAX_PAUSE_MS = 10_000.0

_TextTokens = _bounded(1, MODEL_MAX_TOKENS, "text tokens", whole=True)
_MaxTextTokens = _bounded(1, MODEL_MAX_TOKENS, "text tokens", whole=True,
                         why=f"{MODEL_MAX_TOKENS} is the model's limit")
_Share = _bounded(0, 1)
_PauseMs = _bounded(0, MAX_PAUSE_MS, "milliseconds")
_CrossfadeMs = _bounded(0, 100, "milliseconds")
_Seed = _bounded(0, MAX_SEED, whole=True, why="the engine derives further seeds from it (about "
                "seed x 7.9e9), which must stay below 2**64")


#: Builds a bounded number type whose refusal names the whole range (for plugins' options).
bounded = _bounded
#: The message for two settings out of order (for plugins' options).
order_error = _order_error


class StrategyChoice(BaseModel):
    """One slot's table: the strategy's name and its options."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="name of a strategy in this slot")
    options: dict[str, Any] = Field(default_factory=dict, description="the strategy's options")


class EngineChoice(StrategyChoice):
    """The ``[engine]`` table: which engine, and its own options (default: Chatterbox)."""

    name: str = Field(DEFAULT_ENGINE, min_length=1, description="name of a speech engine")


class PlannerConfig(BaseModel):
    """The ``[planner]`` table: segment lengths in text tokens (as the estimator counts)."""

    model_config = ConfigDict(extra="forbid")

    target_tokens: _TextTokens = Field(96, description="aim for segments of about this many tokens")
    max_tokens: _MaxTextTokens = Field(
        128, description=f"hard limit per segment (the model's limit is {MODEL_MAX_TOKENS})")
    split_threshold_tokens: _TextTokens | None = Field(
        None, description="texts of at most this many tokens stay whole (default: target)")
    min_fill: _Share = Field(0.7, description="a segment below this share of the target may grow to max")
    paragraph_breaks: bool = Field(True, description="never join text across blank lines")

    @model_validator(mode="after")
    def _target_within_max(self) -> PlannerConfig:
        if self.target_tokens > self.max_tokens:
            raise ValueError(_order_error("target_tokens", self.target_tokens, "max_tokens", self.max_tokens))
        return self

    def settings(self) -> PlannerSettings:
        return PlannerSettings(**self.model_dump())


#: Largest ``synthesis.batch_size`` a config may ask for.
MAX_BATCH_SIZE = 256


class SynthesisConfig(BaseModel):
    """The ``[synthesis]`` table: the settings every engine shares.

    Pure settings: nothing here imports torch. What one engine alone knows (a
    Chatterbox checkpoint, voice, sampling) is that engine's options, in the
    ``[engine.options]`` table, checked by the engine's own options model.
    """

    model_config = ConfigDict(extra="forbid")

    device: str = Field("auto", description="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="weights and compute dtype of the engine's models")
    crossfade_ms: _CrossfadeMs = Field(10.0, description="crossfade at chunk seams")
    pause_ms: dict[str, _PauseMs] = Field(
        default_factory=lambda: {"paragraph": 500.0, "sentence": 200.0, "clause": 100.0,
                                 "word": 0.0},
        description="silence after a segment, by the boundary it ends on")
    seed: _Seed | None = Field(None, description="seed for sampling (reproducible runs)")
    batch_size: int | Literal["auto"] = Field(
        "auto", description="segments generated together (batched synthesis): a number "
        f"from 1 (one after another) to {MAX_BATCH_SIZE}, or auto (from the device's free "
        "memory, at most 8 on a CPU, 32 on a GPU)")
    lookahead: bool = Field(
        True, description="streaming: the first segment alone (time to first audio as "
        "unbatched), the following ones in batches ahead of playback")
    decode_batch_size: int | Literal["auto"] = Field(
        "auto", description="a whole text (synthesize, no look-ahead): segments decoded together, "
        "chunk k of each in one vocoder call, where the engine can (1: one at a time; auto: the "
        "engine's choice for the device)")
    overlap: bool | Literal["auto"] = Field(
        "auto", description="generate the next chunk's tokens in another thread while a chunk is "
        "decoded, where the engine can (auto: the engine's choice for the device)")
    language: str | None = Field(
        None, description="the language of the text, a code such as en, fr or zh (ISO 639-1); "
        "none: the engine's default (en). The engine must speak it (`seqopt plugins` lists "
        "each engine's languages)")
    costs: str = Field(
        "auto", min_length=1, description="what the device's work costs, for a chunk policy that plans "
        "with it (deadline): auto (measured once per device and engine settings, then cached) or the "
        "path of a JSON file written by `seqopt costs -o`")

    @field_validator("batch_size", "decode_batch_size", mode="before")
    @classmethod
    def _auto_or_count(cls, value: Any, info: ValidationInfo) -> int | str:
        if value == "auto":
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH_SIZE:
            one = {"batch_size": "generate segments one after another",
                   "decode_batch_size": "decode segments one at a time"}[info.field_name]
            raise ValueError(f"{info.field_name} must be 'auto' or a whole number from 1 to "
                             f"{MAX_BATCH_SIZE}, got {value!r}; use 1 to {one}")
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _language_code(cls, value: Any) -> Any:
        if isinstance(value, str):
            return normalized_language(value)
        return value

    @model_validator(mode="after")
    def _known_boundaries(self) -> SynthesisConfig:
        unknown = set(self.pause_ms) - {"paragraph", "sentence", "clause", "word", "end"}
        if unknown:
            raise ValueError(f"pause_ms: unknown boundary kind(s) {sorted(unknown)}; use "
                             "paragraph, sentence, clause, word")
        return self


class PluginsConfig(BaseModel):
    """The ``[plugins]`` table: discovery controls."""

    model_config = ConfigDict(extra="forbid")

    block: list[str] = Field(default_factory=list, description="entry-point names never loaded")
    autoload: bool = Field(True, description="load third-party plugins from entry points")


class PipelineConfig(BaseModel):
    """A whole pipeline: one strategy per slot plus planner limits and plugin controls."""

    model_config = ConfigDict(extra="forbid")

    extends: str | None = Field(None, description="built-in profile this config starts from")
    description: str = ""
    estimator: StrategyChoice
    splitter: StrategyChoice
    chunk_policy: StrategyChoice
    context_policy: StrategyChoice
    segment_context: StrategyChoice
    attention: StrategyChoice
    engine: EngineChoice = Field(default_factory=EngineChoice,
                                 description="the speech engine and its own options")
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)

    def choice(self, slot: str) -> StrategyChoice:
        return getattr(self, slot)


# --- loading ------------------------------------------------------------------


def profile_names() -> list[str]:
    """Names of the built-in profiles."""
    root = resources.files("seqopt_core") / "profiles"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def _profile_data(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if name not in profile_names():
        raise ConfigError(
            f"unknown profile {name!r}; built-in profiles are: {', '.join(profile_names())}"
        )
    text = (resources.files("seqopt_core") / "profiles" / f"{name}.toml").read_text("utf-8")
    return _resolve_extends(tomllib.loads(text), f"profile {name!r}", seen + (name,))


def _resolve_extends(data: dict[str, Any], source: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{source}: 'extends' must be a profile name (a string), got {parent!r}")
    if parent in seen:
        raise ConfigError(f"{source}: profiles extend each other in a loop: {' -> '.join(seen + (parent,))}")
    names = profile_names()
    if parent not in names:
        close = difflib.get_close_matches(parent, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{source}: extends: unknown profile {short_key(parent)!r}.{hint} "
                          f"Built-in profiles are: {', '.join(names)}")
    merged = merge_config(_profile_data(parent, seen), data)
    merged["extends"] = parent
    return merged


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base`` (see the module docstring for slot tables)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key in SLOTS and isinstance(value, dict) and isinstance(out.get(key), dict):
            slot = out[key]
            if "name" in value and value["name"] != slot.get("name"):
                out[key] = copy.deepcopy(value)
            else:
                merged = {**slot, **{k: v for k, v in value.items() if k != "options"}}
                merged["options"] = {**slot.get("options", {}), **value.get("options", {})}
                out[key] = merged
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def move_legacy_engine_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` with the old ``[synthesis]`` spelling of engine settings
    (:data:`LEGACY_ENGINE_KEYS`) moved to ``[engine.options]``, warning once per key."""
    synthesis = data.get("synthesis")
    if not isinstance(synthesis, dict) or not any(k in synthesis for k in LEGACY_ENGINE_KEYS):
        return data
    out = copy.deepcopy(data)
    moved = {k: out["synthesis"].pop(k) for k in LEGACY_ENGINE_KEYS if k in synthesis}
    engine = out.setdefault("engine", {})
    if not isinstance(engine, dict):
        return data  # the validation error names the bad [engine] table
    engine.setdefault("options", {})
    if isinstance(engine["options"], dict):
        engine["options"] = {**moved, **engine["options"]}
    import warnings

    old = ", ".join(f"synthesis.{k}" for k in moved)
    new = ", ".join(f"engine.options.{k}" for k in moved)
    warnings.warn(f"{source}: {old} belong to the engine now: write them in the [engine.options] "
                  f"table ({new}); they were moved there for this run", DeprecationWarning,
                  stacklevel=3)
    return out


def check_depth(data: Any, source: str, limit: int = MAX_CONFIG_DEPTH) -> None:
    """Refuse ``data`` nested more than ``limit`` tables/arrays deep (without recursion:
    a config 100,000 levels deep gets this message, not a ``RecursionError``)."""
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(data, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            where = ".".join(short_key(str(p), 20) for p in path[:6])
            raise ConfigError(
                f"{source}: {where}{'...' if len(path) > 6 else ''}: tables and arrays are nested "
                f"more than {limit} levels deep; seqopt's settings need at most a few levels "
                "(a table per slot, its options, an array in them): remove the extra nesting")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, (dict, list, tuple)):
                stack.append((value, depth + 1, (*path, key)))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a TOML or JSON config file into a plain dict (no validation)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    too_deep = (f"{path}: tables and arrays are nested too deeply to read (more than "
                f"{MAX_CONFIG_DEPTH} levels are never needed): remove the extra nesting")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        except RecursionError:
            raise ConfigError(too_deep) from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(too_deep) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table/object")
    check_depth(data, str(path))
    return data


def flatten_keys(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested dict: ``{"planner": {"max_tokens": 64}}`` -> ``{"planner.max_tokens": 64}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten_keys(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _related(a: str, b: str) -> bool:
    """Whether dotted keys ``a`` and ``b`` are the same setting or one holds the other."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and where each of its values came from (for error messages).

    ``source`` names the file or profile; values set by ``overrides`` (the
    library's ``overrides=``, the CLI's flags, as given) are blamed on those
    instead, and ``option_names`` maps a dotted key to the spelling the user
    typed (``"planner.max_tokens": "--max"``).
    """

    config: PipelineConfig
    source: str
    overrides: dict[str, Any] = field(default_factory=dict)
    option_names: dict[str, str] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        """Where the value at dotted ``key`` (or a value inside it) came from."""
        names = self.option_names
        hits = [(k, v) for k, v in flatten_keys(self.overrides).items() if _related(k, key)]
        if not hits:
            return self.source
        parts = [f"{names[k]} {v}" if k in names else f"{k} = {v!r}" for k, v in hits]
        what = ", ".join(parts) if all(k in names for k, _ in hits) else "overrides " + ", ".join(parts)
        return f"{what} (over {self.source})"

    def hint(self, message: str) -> str:
        """How to set the keys ``message`` mentions, in the user's own spelling (CLI flags)."""
        mentioned = []
        for key, flag in self.option_names.items():
            leaf = key.rsplit(".", 1)[-1]
            # a distinctive leaf (max_tokens) by itself, a generic one (name) only as its dotted key
            word = leaf if "_" in leaf else key
            if re.search(rf"\b{re.escape(word)}\b", message):
                mentioned.append(f"{flag} sets {word}")
        return "\n  (" + ", ".join(mentioned) + ")" if mentioned else ""


def _validation_message(exc: ValidationError, where: Callable[[str], str], prefix: str = "") -> str:
    """``exc`` as one message, its errors grouped under the source each key came from;
    past :data:`~seqopt_core.validation.MAX_ERROR_LINES` errors, only their number."""
    groups: dict[str, list[str]] = {}
    errors = exc.errors()
    shown = errors[:MAX_ERROR_LINES]
    for err, line in zip(shown, error_lines(exc, prefix, limit=MAX_ERROR_LINES), strict=True):
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        groups.setdefault(where(loc), []).append(line)
    message = [f"{origin}: invalid configuration\n" + "\n".join(lines) for origin, lines in groups.items()]
    return "\n".join(cap_lines(message, len(errors) - len(shown)))


def build_loaded_config(
    data: dict[str, Any],
    source: str,
    overrides: dict[str, Any] | None = None,
    *,
    option_names: dict[str, str] | None = None,
    validate: bool = True,
    host: PluginHost | None = None,
) -> LoadedConfig:
    """``overrides`` laid over ``data`` (a config dict from ``source``), validated.

    With ``validate`` (the default) every slot's strategy name and options are
    checked against the installed plugins too (:func:`resolve_config`), so a
    config that plans fine but would fail to synthesize fails here, at once.
    """
    check_depth(data, source)
    data = move_legacy_engine_keys(data, source)
    if overrides:
        check_depth(overrides, "overrides")
        overrides = move_legacy_engine_keys(overrides, "overrides")
    merged = merge_config(data, overrides) if overrides else data
    given = copy.deepcopy(overrides) if overrides else {}
    names = dict(option_names or {})
    probe = LoadedConfig(PipelineConfig.model_construct(), source, given, names)
    try:
        config = PipelineConfig.model_validate(merged)
    except ValidationError as exc:
        message = _validation_message(exc, probe.origin)
        raise ConfigError(message + probe.hint(message)) from None
    loaded = LoadedConfig(config, source, given, names)
    if validate:
        resolve_config(loaded, host or plugin_host_for(loaded))
    return loaded


def load_config(
    path: str | Path | None = None,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    option_names: dict[str, str] | None = None,
    validate: bool = True,
    host: PluginHost | None = None,
) -> LoadedConfig:
    """Load a config file (or a built-in profile), apply ``overrides`` and validate it all.

    With neither ``path`` nor ``profile``, the ``rtx4090`` profile is used. A
    file without ``extends`` must name every slot itself. ``overrides`` is a
    partial config dict laid on top (the CLI's ``--splitter`` and friends);
    an error in a value it set names the override, not the file or profile
    (``option_names`` gives the spelling to use, such as ``--max``). Every
    slot's strategy name and options are checked against the installed
    plugins (``host``, else the plugins this config's ``[plugins]`` table
    allows), unless ``validate=False``.
    """
    if path is not None:
        data = read_config_file(path)
        source = str(path)
        if profile is not None:
            data = merge_config(_profile_data(profile), {k: v for k, v in data.items() if k != "extends"})
            data["extends"] = profile
        else:
            data = _resolve_extends(data, source)
    else:
        name = profile or DEFAULT_PROFILE
        data = _profile_data(name)
        source = f"profile {name!r}"
    return build_loaded_config(data, source, overrides, option_names=option_names, validate=validate,
                               host=host)


# --- resolution against the loaded plugins -------------------------------------


def plugin_host_for(loaded: LoadedConfig) -> PluginHost:
    """Plugins discovered as ``loaded``'s ``[plugins]`` table says; a plugin it blocks is
    listed as blocked by that table of that file (or by the override that set it)."""
    plugins = loaded.config.plugins
    origin = loaded.origin("plugins.block")
    source = f"[plugins] block in {origin}" if origin == loaded.source else f"plugins.block of {origin}"
    return PluginHost.discover(block=plugins.block, autoload=plugins.autoload, block_source=source)


@dataclass(frozen=True)
class ResolvedSlot:
    """A slot's strategy, found among the plugins, with validated options."""

    slot: str
    name: str
    provider: str
    options: BaseModel


def resolve_config(loaded: LoadedConfig, host: PluginHost,
                   slots: tuple[str, ...] | None = None) -> dict[str, ResolvedSlot]:
    """Check every slot's strategy name and options against the loaded plugins.

    Raises :class:`ConfigError` (or :class:`DuplicateStrategyError`) naming where
    the value came from, the key and what is allowed.
    """
    resolved: dict[str, ResolvedSlot] = {}
    for slot in slots or tuple(SLOTS):
        choice = loaded.config.choice(slot)
        try:
            info = host.strategy(slot, choice.name)
        except SeqoptError as exc:
            kind = type(exc) if isinstance(exc, (ConfigError, DuplicateStrategyError)) else ConfigError
            raise kind(f"{loaded.origin(slot + '.name')}: {slot}.name: {exc}") from None
        try:
            options = info.spec.options.model_validate(choice.options)
        except ValidationError as exc:
            raise options_error(slot, choice.name, info.spec.options, exc,
                                source=loaded.origin(f"{slot}.options")) from None
        resolved[slot] = ResolvedSlot(slot, choice.name, info.provider, options)
    if "engine" in resolved:
        config_language(loaded, host)  # a language the engine does not speak fails here
    return resolved


def config_language(loaded: LoadedConfig, host: PluginHost) -> str | None:
    """The language runs of ``loaded`` speak: ``synthesis.language``, checked against what
    its engine's record declares, else the engine's default (see :mod:`seqopt_core.languages`)."""
    name = loaded.config.engine.name
    spec = host.strategy("engine", name).spec
    return run_language(loaded.config.synthesis.language, name, getattr(spec, "languages", ()),
                        source=loaded.origin("synthesis.language"))


@dataclass(frozen=True)
class BuiltStrategies:
    """What :func:`build_strategies` built, and why it left the other slots unbuilt."""

    built: dict[str, Any]
    #: slot -> why it was not built: disabled here, slow to build, or a resource
    #: the machine lacks (a tokenizer file not downloaded yet, say)
    not_built: dict[str, str]


def build_strategies(loaded: LoadedConfig, host: PluginHost,
                     resolved: dict[str, ResolvedSlot] | None = None, *,
                     only_cheap: bool = True) -> BuiltStrategies:
    """Build the strategies of ``loaded`` that can run here, so that what a factory
    refuses (a language its library lacks, a model that is not installed) is found now.

    With ``only_cheap`` (the default, as ``seqopt config validate`` does) a strategy
    whose record says it is not ``cheap_to_build`` (it loads a model) is skipped: its
    options were checked by its options model. Every slot whose factory refused its
    options (a :class:`ConfigError`) is reported in one :class:`ConfigError`, each
    naming where those options came from. Other seqopt errors (a file this machine
    lacks, not the config's fault) leave the slot in ``not_built`` with the reason.
    """
    resolved = resolved if resolved is not None else resolve_config(loaded, host)
    language = config_language(loaded, host)
    built: dict[str, Any] = {}
    not_built: dict[str, str] = {}
    errors: list[str] = []
    first: SeqoptError | None = None
    for slot, r in resolved.items():
        info = host.strategy(slot, r.name)
        if not info.enabled:
            not_built[slot] = f"disabled here: {info.availability.reason}"
            continue
        if only_cheap and not info.spec.cheap_to_build:
            not_built[slot] = "slow to build (loads a model or a large library)"
            continue
        try:
            built[slot] = host.create(slot, r.name, r.options, language=language)
        except ConfigError as exc:
            first = first or exc
            errors.append(f"{loaded.origin(slot + '.options')}: {exc}")
        except SeqoptError as exc:
            not_built[slot] = f"cannot be built on this machine: {exc}"
    if errors:
        raise ConfigError("\n".join(errors)) from first
    return BuiltStrategies(built, not_built)


def config_schema() -> dict[str, Any]:
    """JSON schema of the config file (slot options are per strategy: see ``seqopt plugins``)."""
    return PipelineConfig.model_json_schema()
