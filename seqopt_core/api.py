"""The library API for apps: load a config, build a planner, plan a text.

    >>> from seqopt_core import build_planner
    >>> planner = build_planner(profile="rtx4090", overrides={"estimator": {"name": "ratio"}})
    >>> plan = planner.plan("First sentence. Second one.")
    >>> [s.text for s in plan.segments]
    ['First sentence. Second one.']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import (
    LoadedConfig,
    PipelineConfig,
    build_loaded_config,
    config_language,
    load_config,
    merge_config,
    plugin_host_for,
    resolve_config,
)
from .planner import SegmentPlanner
from .plugins import PluginHost, StrategyInfo
from .strategies import SLOTS
from .types import SegmentPlan

ConfigLike = LoadedConfig | PipelineConfig | str | Path | None


def as_loaded_config(
    config: ConfigLike = None,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    validate: bool = True,
    host: PluginHost | None = None,
) -> LoadedConfig:
    """Any accepted config form (path, model, loaded config, ``None``) as a :class:`LoadedConfig`,
    checked whole (every slot's strategy and options) unless ``validate=False``."""
    if isinstance(config, LoadedConfig):
        if not overrides:
            return config
        data, source = config.config.model_dump(), config.source
        overrides = merge_config(config.overrides, overrides)
        return build_loaded_config(data, source, overrides, option_names=config.option_names,
                                   validate=validate, host=host)
    if isinstance(config, PipelineConfig):
        return load_config_from_model(config, overrides, "config object", validate=validate, host=host)
    return load_config(config, profile=profile, overrides=overrides, validate=validate, host=host)


def load_config_from_model(
    config: PipelineConfig, overrides: dict[str, Any] | None, source: str, *,
    validate: bool = True, host: PluginHost | None = None,
) -> LoadedConfig:
    """Wrap an in-memory config (with optional overrides) like a loaded file."""
    return build_loaded_config(config.model_dump(), source, overrides, validate=validate, host=host)


def plugin_host(config: ConfigLike = None, *, profile: str | None = None) -> PluginHost:
    """Discover plugins, honouring the config's ``[plugins]`` table."""
    return plugin_host_for(as_loaded_config(config, profile=profile, validate=False))


def build_planner(
    config: ConfigLike = None,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    host: PluginHost | None = None,
) -> SegmentPlanner:
    """A :class:`SegmentPlanner` for ``config`` (a path, a loaded config, or a profile).

    ``overrides`` is a partial config, e.g. ``{"splitter": {"name": "nltk"}}``. The whole
    config is checked (every slot's strategy name and options), not only what planning uses.
    Observers implementing ``seqopt_segment_planned`` hear about every plan.
    """
    loaded = as_loaded_config(config, profile=profile, overrides=overrides, validate=False)
    host = host or plugin_host(loaded)
    # Every slot, not only the two planning uses: an app that plans now and
    # synthesizes later learns of a bad [context_policy] at once.
    resolved = resolve_config(loaded, host)
    est, spl = resolved["estimator"], resolved["splitter"]
    language = config_language(loaded, host)
    return SegmentPlanner(
        host.create("splitter", spl.name, spl.options),
        host.create("estimator", est.name, est.options, language=language),
        loaded.config.planner.settings(),
        splitter_name=spl.name,
        estimator_name=est.name,
        on_plan=host.segment_planned,
        language=language,
    )


def plan_text(
    text: str,
    config: ConfigLike = None,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> SegmentPlan:
    """Plan ``text`` in one call (builds a planner each time: reuse one for many texts)."""
    return build_planner(config, profile=profile, overrides=overrides).plan(text)


def list_strategies(slot: str | None = None, host: PluginHost | None = None) -> list[StrategyInfo]:
    """Every strategy (of one slot, or of all), with provider and availability."""
    host = host or PluginHost.discover()
    slots = [slot] if slot else list(SLOTS)
    return [info for s in slots for info in host.strategies(s)]
