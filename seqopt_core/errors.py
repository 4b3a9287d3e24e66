"""Exceptions raised by seqopt.

Every error a user can cause derives from :class:`SeqoptError`; its message says
what was wrong and what to do about it. The CLI prints these messages without
a traceback; anything else escaping is a bug in seqopt.
"""

from __future__ import annotations


class SeqoptError(Exception):
    """Base class for every error that is the user's input, not a seqopt bug."""


class InvalidTextError(SeqoptError, ValueError):
    """The text to plan cannot be planned as given (empty, control characters, ...)."""


class TextDecodeError(SeqoptError, ValueError):
    """An input file is not valid UTF-8."""


class InputFileError(SeqoptError, OSError):
    """A text file to read is missing, a directory, or unreadable."""


class EngineUnavailableError(SeqoptError, ImportError):
    """The speech engine was used without its dependencies (``pip install 'seqopt[chatterbox]'``)."""


class ConfigError(SeqoptError, ValueError):
    """A configuration file or value is invalid."""


class UnknownStrategyError(ConfigError, LookupError):
    """A strategy name is not provided by any loaded plugin."""


class StrategyUnavailableError(ConfigError):
    """A strategy exists but cannot run here (usually a missing optional dependency)."""


class DuplicateStrategyError(SeqoptError):
    """Two plugins provide a strategy of the same name in the same slot."""


class PluginError(SeqoptError):
    """A plugin could not be loaded or implements a hook that does not exist."""


class PlanningError(SeqoptError, ValueError):
    """The planner cannot honour a limit without breaking a word, number, URL or tag."""


class TokenizerNotFoundError(SeqoptError, FileNotFoundError):
    """The Chatterbox ``tokenizer.json`` needed by the exact estimator was not found."""


class OptionValueError(ConfigError):
    """Raised by a strategy's factory for an option value it cannot use (a language the
    library lacks, a model that is not installed); ``key`` names the option:
    ``raise OptionValueError("unknown language 'xx'; ...", key="language")``.

    :meth:`StrategySpec.create <seqopt_core.StrategySpec.create>` turns it into a
    :class:`StrategyBuildError` that names the slot and the strategy too.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class StrategyBuildError(ConfigError):
    """A strategy's factory refused its options (``ValueError``, ``LookupError`` or
    ``OSError`` from the factory, or :class:`OptionValueError`).

    ``slot`` and ``name`` say which strategy, ``key`` the option when the factory
    said which (else ``None``); the original exception is the ``__cause__``.
    """

    def __init__(self, message: str, *, slot: str = "", name: str = "", key: str | None = None) -> None:
        super().__init__(message)
        self.slot = slot
        self.name = name
        self.key = key


class SynthesisError(SeqoptError):
    """A segment could not be synthesized (after its retry and further splitting)."""
