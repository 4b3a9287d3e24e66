"""The ``chatterbox`` engine's registration: the entry point ``chatterbox_engine`` of the ``seqopt`` group.

Registered exactly as a third-party engine would be. Importing this module
imports neither torch nor chatterbox: the factory does, when a pipeline loads
the engine, so ``seqopt plugins`` lists the engine (disabled, with the install
command) on a light install. It also adds ``seqopt make-checkpoint``.
"""

from __future__ import annotations

from typing import Any

import click

from seqopt_core import EngineSpec, hookimpl

from seqopt_plugins.estimators.chatterbox_multilingual import LANGUAGES as MULTILINGUAL_CODES

from .options import ChatterboxOptions, MultilingualOptions, TurboOptions

INSTALL = "pip install 'seqopt[chatterbox]'"
#: What Chatterbox Multilingual speaks, its default (English) first.
MULTILINGUAL_LANGUAGES = ("en", *(code for code in MULTILINGUAL_CODES if code != "en"))


def load_engine(options: ChatterboxOptions, runtime: Any) -> Any:
    """Load the checkpoint ``options`` name (or the released one) on ``runtime``'s device."""
    from .engine import ChatterboxEngine

    return ChatterboxEngine.load(options, runtime)


def load_multilingual_engine(options: MultilingualOptions, runtime: Any) -> Any:
    """Load the Multilingual checkpoint ``options`` name (or the released one)."""
    from .multilingual import ChatterboxMultilingualEngine

    return ChatterboxMultilingualEngine.load(options, runtime)


def load_turbo_engine(options: TurboOptions, runtime: Any) -> Any:
    """Load the Turbo checkpoint ``options`` name (or the released one)."""
    from .turbo import ChatterboxTurboEngine

    return ChatterboxTurboEngine.load(options, runtime)


def preflight(options: ChatterboxOptions) -> None:
    """Check the voice file before the model loads (a :class:`~.voice.VoiceError` says
    what is wrong; a short voice gets a :class:`~.voice.VoiceWarning`)."""
    if options.voice:
        from .voice import check_voice_file

        check_voice_file(options.voice)


@hookimpl
def seqopt_engines() -> list[EngineSpec]:
    shared: dict[str, Any] = {
        "requires": ("torch", "transformers", "chatterbox"), "install": INSTALL, "preflight": preflight,
        "batched_decode": True, "concurrent_stages": True, "voices": True}
    return [
        EngineSpec(name="chatterbox", factory=load_engine, options=ChatterboxOptions,
                   languages=("en",), estimator="chatterbox", **shared,
                   description="Resemble AI's Chatterbox: T3 (speech tokens) + S3Gen (24 kHz audio)"),
        EngineSpec(name="chatterbox-multilingual", factory=load_multilingual_engine,
                   options=MultilingualOptions, languages=MULTILINGUAL_LANGUAGES,
                   estimator="chatterbox-multilingual", **shared,
                   description="Chatterbox Multilingual: 23 languages, the alignment guard at SDPA speed"),
        EngineSpec(name="chatterbox-turbo", factory=load_turbo_engine, options=TurboOptions,
                   languages=("en",), estimator="chatterbox-turbo", uses_attention=False, **shared,
                   description="Chatterbox Turbo: GPT-2 T3 without CFG, 2-step mean-flow S3Gen"),
    ]


@hookimpl
def seqopt_register_commands(cli: Any) -> None:
    @cli.command("make-checkpoint")
    @click.argument("directory", type=click.Path(file_okay=False))
    @click.option("--model", type=click.Choice(["english", "multilingual", "turbo"]),
                  default="english", show_default=True,
                  help="which released model's layout: English, Multilingual (23 languages) or "
                       "Turbo (GPT-2 T3, meanflow S3Gen)")
    @click.option("--scale", type=click.Choice(["tiny", "full"]), default="tiny", show_default=True,
                  help="tiny: same structure, small enough for tests; full: the released sizes")
    @click.option("--seed", type=int, default=0, show_default=True,
                  help="random seed (same seed, same files)")
    @click.option("--tokenizer", metavar="PATH",
                  help="English only: the released tokenizer.json to copy in "
                       "(default: $SEQOPT_TOKENIZER)")
    def make_checkpoint(directory: str, model: str, scale: str, seed: int,
                        tokenizer: str | None) -> None:
        """Write a random-weight Chatterbox checkpoint in the released file layout.

        Random weights make noise, not speech: use it to run and measure the real
        model code without the released weights (tests, benchmarks). Multilingual
        and Turbo get structural tokenizer files (token counts are not the released
        vocabularies').
        """
        from rich.console import Console
        from rich.text import Text

        from seqopt_core import EngineUnavailableError
        from seqopt_plugins.estimators.chatterbox import resolve_tokenizer_path

        try:
            from .checkpoint import write_random_checkpoint
        except ImportError as exc:
            raise EngineUnavailableError(
                f"the Chatterbox engine needs the chatterbox extra ({exc.name or exc} is missing): "
                f"{INSTALL}") from None
        if model == "english":
            source = resolve_tokenizer_path(tokenizer)
        elif tokenizer:
            raise click.UsageError(f"--tokenizer is for --model english only; {model} gets "
                                   "seqopt's structural tokenizer files")
        else:
            source = None
        console = Console(stderr=True)
        what = f"{scale} {model} random checkpoint"
        with console.status(Text(f"writing a {what} to {directory}")) as status:
            info = write_random_checkpoint(
                directory, model=model, scale=scale, seed=seed, tokenizer=source,
                progress=lambda msg: status.update(Text(f"{what}: {msg}")))
        for name, size in info.files.items():
            click.echo(f"{name:20} {size / 2**20:10.1f} MiB")
        label = scale if model == "english" else f"{scale} {model}"
        click.echo(f"{label} random-weight checkpoint (seed {seed}) in {info.path}, "
                   f"{info.total_bytes / 2**20:.1f} MiB, {info.seconds:.1f} s. "
                   "Random weights make noise, not speech.")
