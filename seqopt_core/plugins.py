"""Plugin discovery and the typed facade that is the only caller of seqopt's hooks.

Every plugin, built-in or third-party, is a module named by an entry point in the
``seqopt`` group. The built-ins are the entry points of the ``seqopt``
distribution itself, so they load by exactly the path a third-party plugin does.

Discovery controls (environment, or the ``[plugins]`` table of a config file):

* ``SEQOPT_BLOCK_PLUGINS=name1,name2`` (``plugins.block``): never load these
  entry points, built-in or not.
* ``SEQOPT_DISABLE_PLUGIN_AUTOLOAD=1`` (``plugins.autoload = false``): load only
  the built-ins; third-party entry points are listed as ``not loaded``.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Literal

import pluggy

from . import hookspecs
from .errors import (
    DuplicateStrategyError,
    EngineUnavailableError,
    PluginError,
    StrategyUnavailableError,
    UnknownStrategyError,
)
from .strategies import SLOTS, Availability, StrategySpec
from .types import ChunkEvent, GenerationEvent, SegmentEvent, SegmentPlan

ENTRY_POINT_GROUP = "seqopt"
BUILTIN_DISTRIBUTION = "seqopt"
BLOCK_ENV = "SEQOPT_BLOCK_PLUGINS"
NO_AUTOLOAD_ENV = "SEQOPT_DISABLE_PLUGIN_AUTOLOAD"
#: How a blocked plugin's message names ``discover(block=...)`` when not told its file.
DEFAULT_BLOCK_SOURCE = "[plugins] block of the config"

PluginStatus = Literal["loaded", "blocked", "not loaded", "error"]


@dataclass(frozen=True)
class PluginInfo:
    """What discovery did with one entry point (or one plugin registered by code)."""

    name: str
    module: str
    distribution: str | None
    builtin: bool
    status: PluginStatus
    detail: str | None = None
    #: For a ``blocked`` plugin, the settings that blocked it: ``SEQOPT_BLOCK_PLUGINS``
    #: and/or the ``block_source`` given to :meth:`PluginHost.discover` (the config's
    #: ``[plugins] block``, with the file it came from).
    blocked_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class StrategyInfo:
    """One strategy as listed by ``seqopt plugins``."""

    slot: str
    name: str
    provider: str
    description: str
    availability: Availability
    spec: StrategySpec[Any] = field(repr=False, compare=False)
    #: Other plugins that provide a strategy of the same name in this slot: the
    #: name cannot be used until one of them is blocked.
    clash: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.availability.enabled and not self.clash


def _env_list(name: str) -> set[str]:
    return {p.strip() for p in os.environ.get(name, "").split(",") if p.strip()}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    """Loads plugins and answers every question the rest of seqopt asks them.

    Create one with :meth:`discover` (entry points) or directly with a list of
    plugin objects (tests). Strategy lists are collected once, on first use.
    """

    def __init__(self, plugins: Iterable[tuple[str, object]] = ()) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._infos: list[PluginInfo] = []
        self._registry: dict[str, dict[str, list[StrategyInfo]]] | None = None
        for name, plugin in plugins:
            self.register(plugin, name=name)

    # -- discovery ---------------------------------------------------------

    @classmethod
    def discover(
        cls,
        *,
        block: Iterable[str] = (),
        autoload: bool | None = None,
        entry_point_list: Iterable[EntryPoint] | None = None,
        block_source: str = DEFAULT_BLOCK_SOURCE,
    ) -> PluginHost:
        """Load the plugins named by entry points in the ``seqopt`` group.

        ``block`` adds to ``SEQOPT_BLOCK_PLUGINS``; ``autoload=False`` (or
        ``SEQOPT_DISABLE_PLUGIN_AUTOLOAD=1``) skips third-party plugins.
        ``block_source`` is how messages name where ``block`` came from (say,
        ``"[plugins] block in my.toml"``); a blocked plugin's :class:`PluginInfo`
        records which of the two settings blocked it.
        """
        host = cls()
        block = set(block)
        env_block = _env_list(BLOCK_ENV)
        blocked = block | env_block
        if autoload is None:
            autoload = True
        autoload = autoload and not _env_flag(NO_AUTOLOAD_ENV)
        eps = list(entry_point_list) if entry_point_list is not None else list(
            entry_points(group=ENTRY_POINT_GROUP)
        )
        if not any(_dist_name(ep) == BUILTIN_DISTRIBUTION for ep in eps) and entry_point_list is None:
            raise PluginError(
                "seqopt's built-in plugins are not registered: the 'seqopt' distribution "
                "is not installed. Install it with: pip install -e . (from the checkout)"
            )
        seen: dict[str, str] = {}
        for ep in sorted(eps, key=lambda e: (_dist_name(e) != BUILTIN_DISTRIBUTION, e.name)):
            dist = _dist_name(ep)
            builtin = dist == BUILTIN_DISTRIBUTION
            if ep.name in seen:
                if seen[ep.name] == ep.value:
                    continue  # the same distribution seen twice on sys.path
                host._infos.append(PluginInfo(ep.name, ep.value, dist, builtin, "error",
                                              f"entry point name {ep.name!r} is already used "
                                              f"by {seen[ep.name]}; rename one of them"))
                continue
            seen[ep.name] = ep.value
            if ep.name in blocked:
                by = tuple(name for name, names in ((BLOCK_ENV, env_block), (block_source, block))
                           if ep.name in names)
                host._infos.append(PluginInfo(ep.name, ep.value, dist, builtin, "blocked",
                                              f"blocked by {' and by '.join(by)}", blocked_by=by))
                continue
            if not builtin and not autoload:
                host._infos.append(PluginInfo(ep.name, ep.value, dist, builtin, "not loaded",
                                              "third-party autoload is off"))
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break discovery
                host._infos.append(PluginInfo(ep.name, ep.value, dist, builtin, "error",
                                              f"import failed: {type(exc).__name__}: {exc}"))
                continue
            try:
                host.register(plugin, name=ep.name, distribution=dist, builtin=builtin)
            except PluginError as exc:
                host._infos.append(PluginInfo(ep.name, ep.value, dist, builtin, "error", str(exc)))
        return host

    def register(
        self,
        plugin: object,
        *,
        name: str | None = None,
        distribution: str | None = None,
        builtin: bool = False,
    ) -> None:
        """Register a plugin object (usually a module). Rejects misspelled hook names."""
        if isinstance(plugin, str):
            plugin = importlib.import_module(plugin)
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        self._pm.register(plugin, name=name)
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self._pm.unregister(plugin)
            raise PluginError(_explain_unknown_hook(name, plugin, exc)) from None
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
        self._infos.append(PluginInfo(name, module, distribution, builtin, "loaded"))
        self._registry = None

    def plugin_infos(self) -> list[PluginInfo]:
        """Every plugin discovery saw, with what it did with it."""
        return list(self._infos)

    # -- registry hooks ----------------------------------------------------

    def _collect(self) -> dict[str, dict[str, list[StrategyInfo]]]:
        """Every record of every slot, by name; a name two plugins provide keeps both.

        A plugin whose registry hook raises, or returns something other than its
        slot's records, is marked ``error`` with the reason and contributes nothing;
        the other plugins' strategies are still listed.
        """
        if self._registry is not None:
            return self._registry
        registry: dict[str, dict[str, list[StrategyInfo]]] = {}
        for key, slot in SLOTS.items():
            found: dict[str, list[StrategyInfo]] = {}
            caller = getattr(self._pm.hook, slot.hook)
            # Called per implementation, in registration order, so that each
            # record keeps the name of the plugin that provided it.
            for impl in caller.get_hookimpls():
                try:
                    records = list(impl.function() or [])
                    bad = [r for r in records if not isinstance(r, slot.record)]
                    if bad:
                        raise PluginError(f"{slot.hook}() must return {slot.record.__name__} records, "
                                          f"got {type(bad[0]).__name__}")
                except Exception as exc:  # a broken plugin must not hide the others
                    detail = str(exc) if isinstance(exc, PluginError) else f"{slot.hook}() raised " \
                        f"{type(exc).__name__}: {exc}"
                    self._mark_error(impl.plugin_name, detail)
                    continue
                for spec in records:
                    found.setdefault(spec.name, []).append(StrategyInfo(
                        key, spec.name, impl.plugin_name, spec.description, spec.availability(), spec))
            registry[key] = {
                name: [replace(info, clash=tuple(o.provider for o in infos if o is not info))
                       for info in infos] if len(infos) > 1 else infos
                for name, infos in found.items()
            }
        self._registry = registry
        return registry

    def _mark_error(self, plugin_name: str, detail: str) -> None:
        for i, info in enumerate(self._infos):
            if info.name == plugin_name:
                self._infos[i] = replace(info, status="error", detail=detail)
                return
        self._infos.append(PluginInfo(plugin_name, plugin_name, None, False, "error", detail))

    def strategies(self, slot: str) -> list[StrategyInfo]:
        """All strategies of ``slot``, enabled or not, sorted by name (then provider).

        A name that two plugins provide is listed once per provider, each entry's
        ``clash`` naming the others; only looking that name up fails.
        """
        self._check_slot(slot)
        return sorted((i for infos in self._collect()[slot].values() for i in infos),
                      key=lambda s: (s.name, s.provider))

    def strategy(self, slot: str, name: str) -> StrategyInfo:
        """The strategy ``name`` of ``slot``; an unknown name lists the choices, and
        a name that two plugins provide names both and how to block one."""
        self._check_slot(slot)
        found = self._collect()[slot]
        if name not in found:
            choices = ", ".join(sorted(found)) or "none (no plugin provides this slot)"
            hint = difflib.get_close_matches(name, found, n=1)
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise UnknownStrategyError(
                f"unknown {slot} {name!r}.{did_you_mean} Valid choices: {choices}.{self._unloaded_note()}"
            )
        infos = found[name]
        if len(infos) > 1:
            providers = " and ".join(f"{i.provider!r}{self._from(i.provider)}" for i in infos)
            block = ",".join(i.provider for i in infos if not self._is_builtin(i.provider)) \
                or infos[-1].provider
            raise DuplicateStrategyError(
                f"two plugins provide the {slot} strategy {name!r}: {providers}. Block one of "
                f"them with {BLOCK_ENV}={block} (or [plugins] block = [{block!r}] in a config), "
                f"or pick another {slot}"
            )
        return infos[0]

    def _from(self, plugin_name: str) -> str:
        dist = next((i.distribution for i in self._infos if i.name == plugin_name), None)
        return f" (from {dist})" if dist else ""

    def _is_builtin(self, plugin_name: str) -> bool:
        return any(i.builtin for i in self._infos if i.name == plugin_name)

    def _unloaded_note(self) -> str:
        """Why an unknown name may still be installed: plugins skipped or broken here."""
        notes = []
        skipped = [i for i in self._infos if i.status in ("not loaded", "blocked")]
        if skipped:
            listed = "; ".join(f"{i.name}{' (' + i.distribution + ')' if i.distribution else ''}: {i.detail}"
                               for i in skipped)
            fixes = []
            if any(i.status == "not loaded" for i in skipped):
                fixes.append(f"unset {NO_AUTOLOAD_ENV} (or set [plugins] autoload = true)")
            settings = list(dict.fromkeys(b for i in skipped if i.status == "blocked"
                                          for b in i.blocked_by or (BLOCK_ENV, DEFAULT_BLOCK_SOURCE)))
            if settings:
                fixes.append(f"remove it from {' and from '.join(settings)}")
            notes.append(f" Installed plugins that were not loaded, one of which may provide it: {listed}. "
                         f"To load them, {' and '.join(fixes)}.")
        broken = [f"{i.name} ({i.detail})" for i in self._infos if i.status == "error"]
        if broken:
            notes.append(f" Plugins that failed to load: {'; '.join(broken)}")
        return "".join(notes)

    def create(self, slot: str, name: str, options: Any = None, *, language: str | None = None) -> Any:
        """Build strategy ``name`` of ``slot`` with ``options`` (a dict or its options model).

        Bad options raise :class:`ConfigError` naming the strategy, the key and
        the keys it accepts, the same message a config file gets. ``language`` is
        the run's language, for an estimator whose record is ``per_language``
        (other strategies ignore it).
        """
        info = self.strategy(slot, name)
        if not info.enabled:
            install = f" Install it with: {info.availability.install}" if info.availability.install else ""
            raise StrategyUnavailableError(
                f"{slot} {name!r} is disabled: {info.availability.reason}.{install}"
            )
        if getattr(info.spec, "per_language", False):
            return info.spec.create(options, language)
        return info.spec.create(options)

    def create_engine(self, name: str, options: Any = None, runtime: Any = None) -> Any:
        """Load engine ``name`` with ``options`` on ``runtime`` (an
        :class:`~seqopt_core.engine.EngineRuntime`: device and dtype).

        An engine that cannot run here raises :class:`EngineUnavailableError`
        (an ``ImportError`` too) with the reason and the install command.
        """
        info = self.strategy("engine", name)
        if not info.enabled:
            install = f" Install it with: {info.availability.install}" if info.availability.install else ""
            raise EngineUnavailableError(
                f"engine {name!r} is disabled: {info.availability.reason}.{install}")
        return info.spec.create(options, runtime)

    def preflight_engine(self, name: str, options: Any = None) -> None:
        """Run engine ``name``'s ``preflight`` check of ``options`` (before a slow load)."""
        spec = self.strategy("engine", name).spec
        if spec.preflight is not None:
            spec.preflight(spec.validated(options))

    @staticmethod
    def _check_slot(slot: str) -> None:
        if slot not in SLOTS:
            raise UnknownStrategyError(f"unknown slot {slot!r}; slots are: {', '.join(SLOTS)}")

    # -- the command hook ----------------------------------------------------

    def register_commands(self, cli: Any) -> None:
        """Let every loaded plugin add subcommands to ``cli`` (the ``seqopt`` group).
        A plugin whose hook raises is marked ``error``; the others still register."""
        for impl in self._pm.hook.seqopt_register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:  # a broken plugin must not break the command line
                self._mark_error(impl.plugin_name, f"seqopt_register_commands() raised "
                                                   f"{type(exc).__name__}: {exc}")

    # -- lifecycle hooks ---------------------------------------------------

    def segment_planned(self, plan: SegmentPlan) -> None:
        """Tell observers about every segment of ``plan``."""
        hook = self._pm.hook.seqopt_segment_planned
        if not hook.get_hookimpls():
            return
        for segment in plan.segments:
            hook(segment=segment, plan=plan)

    def chunk_emitted(self, event: ChunkEvent) -> None:
        self._pm.hook.seqopt_chunk_emitted(event=event)

    def segment_finished(self, event: SegmentEvent) -> None:
        self._pm.hook.seqopt_segment_finished(event=event)

    def generation_finished(self, event: GenerationEvent) -> None:
        self._pm.hook.seqopt_generation_finished(event=event)


def _dist_name(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _explain_unknown_hook(name: str, plugin: object, exc: Exception) -> str:
    known = [h for h in dir(hookspecs) if h.startswith("seqopt_")]
    bad = [a for a in dir(plugin) if a.startswith("seqopt_") and a not in known]
    parts = []
    for attr in bad:
        close = difflib.get_close_matches(attr, known, n=1)
        parts.append(f"{attr!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    what = ", ".join(parts) if parts else str(exc)
    return f"plugin {name!r} implements unknown hook(s): {what}"
