"""The hooks a seqopt plugin can implement.

Two kinds of hook:

* **Registry hooks** (``seqopt_token_estimators`` ... ``seqopt_engines``)
  are called once per plugin host, with no arguments, when the strategies of a
  slot are first needed. Each returns a list of small typed records
  (:class:`~seqopt_core.strategies.StrategySpec` subclasses). A strategy name
  must be unique within its slot across all plugins.
* **Lifecycle hooks** (``seqopt_segment_planned`` ... ``seqopt_generation_finished``)
  are called as a text is planned and synthesized; observers such as monitors
  implement them. Their return values are ignored.
* **The command hook** (``seqopt_register_commands``) adds subcommands to the
  ``seqopt`` command line.

Only :class:`seqopt_core.plugins.PluginHost` calls these hooks. Mark your
implementations with :data:`seqopt_core.hookimpl` and register the module under
the ``seqopt`` entry-point group (see ``docs/plugin-guide.md``).
"""

from __future__ import annotations

from typing import Any

import pluggy

from .strategies import (
    AttentionBackendSpec,
    ChunkPolicySpec,
    ContextPolicySpec,
    EngineSpec,
    SegmentContextSpec,
    SentenceSplitterSpec,
    TokenEstimatorSpec,
)
from .types import ChunkEvent, GenerationEvent, Segment, SegmentEvent, SegmentPlan

PROJECT_NAME = "seqopt"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- registry hooks -------------------------------------------------------------


@hookspec
def seqopt_token_estimators() -> list[TokenEstimatorSpec]:
    """Offer token estimators: objects with ``count(text) -> int``.

    Called once per plugin host, when the ``estimator`` slot is first needed.
    Return a list of :class:`~seqopt_core.strategies.TokenEstimatorSpec`.
    ``count`` must return the number of text tokens the model receives for the
    text as one segment, start and stop tokens included.

    Example plugin::

        from pydantic import BaseModel
        from seqopt_core import TokenEstimatorSpec, hookimpl

        class WordsOptions(BaseModel):
            tokens_per_word: float = 1.4

        class WordCountEstimator:
            def __init__(self, options: WordsOptions):
                self.per_word = options.tokens_per_word

            def count(self, text: str) -> int:
                return round(len(text.split()) * self.per_word) + 2

        @hookimpl
        def seqopt_token_estimators():
            return [TokenEstimatorSpec(
                name="words", factory=WordCountEstimator, options=WordsOptions,
                description="1.4 tokens per whitespace-separated word")]
    """


@hookspec
def seqopt_sentence_splitters() -> list[SentenceSplitterSpec]:
    """Offer sentence splitters: objects with ``split(text) -> list[Span]``.

    Called once per plugin host, when the ``splitter`` slot is first needed.
    Return a list of :class:`~seqopt_core.strategies.SentenceSplitterSpec`.
    A splitter only finds boundaries: it returns spans into the text it was given,
    in order, trimmed of whitespace, so the planner can never lose text.

    Example plugin::

        import re
        from seqopt_core import SentenceSplitterSpec, Span, hookimpl

        class LineSplitter:
            def __init__(self, options):
                pass

            def split(self, text: str) -> list[Span]:
                return [Span(m.start(), m.end()) for m in re.finditer(r"[^\\n]*\\S", text)
                        if text[m.start():m.end()].strip()]

        @hookimpl
        def seqopt_sentence_splitters():
            return [SentenceSplitterSpec(
                name="lines", factory=LineSplitter, description="one sentence per line")]
    """


@hookspec
def seqopt_chunk_policies() -> list[ChunkPolicySpec]:
    """Offer chunk-size policies: objects with ``chunk_size(segment_tokens, chunk_index, segment_index)``.

    Called once per plugin host, when the ``chunk_policy`` slot is first needed.
    Return a list of :class:`~seqopt_core.strategies.ChunkPolicySpec`. The
    engine asks the policy how many speech tokens to collect before it decodes
    chunk ``chunk_index`` of segment ``segment_index`` (0 is the first of the
    stream), a segment ``segment_tokens`` text tokens long.

    Example plugin::

        from pydantic import BaseModel
        from seqopt_core import ChunkPolicySpec, hookimpl

        class GrowingOptions(BaseModel):
            first: int = 10
            step: int = 10
            limit: int = 50

        class GrowingChunks:
            def __init__(self, o: GrowingOptions):
                self.o = o

            def chunk_size(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
                return min(self.o.first + chunk_index * self.o.step, self.o.limit)

        @hookimpl
        def seqopt_chunk_policies():
            return [ChunkPolicySpec(name="growing", factory=GrowingChunks,
                                    options=GrowingOptions,
                                    description="chunks grow by a fixed step")]
    """


@hookspec
def seqopt_context_policies() -> list[ContextPolicySpec]:
    """Offer context-window policies: objects with ``context_window(segment_tokens, chunk_index, segment_index)``.

    Called once per plugin host, when the ``context_policy`` slot is first needed.
    Return a list of :class:`~seqopt_core.strategies.ContextPolicySpec`. The
    answer is how many already-decoded speech tokens S3Gen re-reads before a chunk.

    Example plugin::

        from seqopt_core import ContextPolicySpec, hookimpl

        class NoContext:
            def __init__(self, options):
                pass

            def context_window(self, segment_tokens: int, chunk_index: int, segment_index: int) -> int:
                return 0

        @hookimpl
        def seqopt_context_policies():
            return [ContextPolicySpec(name="none", factory=NoContext,
                                      description="decode each chunk on its own")]
    """


@hookspec
def seqopt_segment_context_strategies() -> list[SegmentContextSpec]:
    """Offer cross-segment context strategies: objects with ``prompt_tokens(previous_segments)``.

    Called once per plugin host, when the ``segment_context`` slot is first needed.
    Return a list of :class:`~seqopt_core.strategies.SegmentContextSpec`. Before
    each segment the engine passes the speech tokens of the segments generated so
    far; the strategy returns tokens to prime the next one, or ``None``.

    Example plugin::

        from seqopt_core import SegmentContextSpec, hookimpl

        class LastFive:
            def __init__(self, options):
                pass

            def prompt_tokens(self, previous_segments):
                return list(previous_segments[-1][-5:]) if previous_segments else None

        @hookimpl
        def seqopt_segment_context_strategies():
            return [SegmentContextSpec(name="last5", factory=LastFive,
                                       description="prime with 5 speech tokens")]
    """


@hookspec
def seqopt_attention_backends() -> list[AttentionBackendSpec]:
    """Offer attention backends: objects with ``attn_implementation``.

    Called once per plugin host, when the ``attention`` slot is first needed.
    Return a list of :class:`~seqopt_core.strategies.AttentionBackendSpec`; the
    record declares what the backend can do (``provides_alignment``,
    ``keeps_all_layers``, ``setup`` for a custom kernel). A backend that provides
    alignment has ``aligned_heads`` too. Use ``requires`` and ``check`` so that a
    backend the machine cannot run is listed as disabled with its reason instead
    of failing.

    Example plugin::

        from seqopt_core import AttentionBackendSpec, hookimpl

        class FlexAttention:
            attn_implementation = "flex_attention"

            def __init__(self, options):
                pass

        @hookimpl
        def seqopt_attention_backends():
            return [AttentionBackendSpec(
                name="flex", factory=FlexAttention, requires=("torch",),
                install="pip install torch>=2.5",
                description="PyTorch flex attention, no alignment guard")]
    """


@hookspec
def seqopt_engines() -> list[EngineSpec]:
    """Offer speech engines: objects that implement :class:`seqopt_core.engine.Engine`.

    Called once per plugin host, when the ``engine`` slot is first needed. Return
    a list of :class:`~seqopt_core.strategies.EngineSpec`. The factory is called
    with the engine's validated options (``[engine.options]``) and an
    :class:`~seqopt_core.engine.EngineRuntime` (device, dtype); import the model
    library inside it, so that listing engines never imports torch.

    ``tests/sine_engine.py`` is a complete working engine.

    Example plugin::

        from pydantic import BaseModel
        from seqopt_core import EngineSpec, hookimpl

        class BeepOptions(BaseModel):
            pitch_hz: float = 440.0

        def load_beeps(options, runtime):
            from my_beeps.engine import BeepEngine   # the heavy import, here

            return BeepEngine(options, device=runtime.device)

        @hookimpl
        def seqopt_engines():
            return [EngineSpec(name="beeps", factory=load_beeps, options=BeepOptions,
                               requires=("my_beeps",), install="pip install my-beeps",
                               batching=False, uses_attention=False,
                               description="a beep per speech token")]
    """


@hookspec
def seqopt_register_commands(cli: Any) -> None:
    """Add subcommands to the ``seqopt`` command line.

    ``cli`` is the root :class:`click.Group`; decorate new commands with
    ``@cli.command()``. Called once when the command line starts, for every
    loaded plugin. Import heavy libraries inside the command, not here.

    Example plugin::

        import click
        from seqopt_core import hookimpl

        @hookimpl
        def seqopt_register_commands(cli):
            @cli.command("hello")
            @click.argument("name")
            def hello(name):
                \"\"\"Say hello.\"\"\"
                click.echo(f"hello {name}")
    """


# --- lifecycle hooks --------------------------------------------------------------


@hookspec
def seqopt_segment_planned(segment: Segment, plan: SegmentPlan) -> None:
    """Called once for every segment of a plan, in order, right after planning.

    Example plugin::

        from seqopt_core import hookimpl

        @hookimpl
        def seqopt_segment_planned(segment, plan):
            print(f"segment {segment.index}: {segment.tokens} tokens ({segment.boundary})")
    """


@hookspec
def seqopt_chunk_emitted(event: ChunkEvent) -> None:
    """Called each time the engine hands a chunk of audio to the caller.

    Example plugin::

        from seqopt_core import hookimpl

        @hookimpl
        def seqopt_chunk_emitted(event):
            if event.is_first_audio:
                print(f"first audio after {event.since_start_seconds:.3f} s")
    """


@hookspec
def seqopt_segment_finished(event: SegmentEvent) -> None:
    """Called when a segment is fully synthesized.

    Example plugin::

        from seqopt_core import hookimpl

        @hookimpl
        def seqopt_segment_finished(event):
            print(f"segment {event.segment.index}: RTF {event.rtf:.2f}")
    """


@hookspec
def seqopt_generation_finished(event: GenerationEvent) -> None:
    """Called once per text when synthesis ends, also when the stream was closed early
    (``event.completed`` is then False).

    Example plugin::

        import json
        from seqopt_core import hookimpl

        @hookimpl
        def seqopt_generation_finished(event):
            with open("runs.jsonl", "a") as f:
                f.write(json.dumps({"rtf": event.rtf, "ttfa": event.time_to_first_audio}) + "\\n")
    """


#: Names of the registry hooks, in slot order.
REGISTRY_HOOKS: tuple[str, ...] = (
    "seqopt_token_estimators",
    "seqopt_sentence_splitters",
    "seqopt_chunk_policies",
    "seqopt_context_policies",
    "seqopt_segment_context_strategies",
    "seqopt_attention_backends",
    "seqopt_engines",
)

#: Names of the hooks that extend the command line.
COMMAND_HOOKS: tuple[str, ...] = ("seqopt_register_commands",)

#: Names of the lifecycle (observer) hooks.
LIFECYCLE_HOOKS: tuple[str, ...] = (
    "seqopt_segment_planned",
    "seqopt_chunk_emitted",
    "seqopt_segment_finished",
    "seqopt_generation_finished",
)
