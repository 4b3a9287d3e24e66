"""Languages a run speaks: ``synthesis.language``, checked against what the engine declares.

An engine's registry record lists the ISO 639-1 codes its model speaks
(:attr:`~seqopt_core.strategies.EngineSpec.languages`, its default first). A run's
language is ``synthesis.language`` when set, else that default; it is checked
here, before any model loads, with an error that lists what the engine speaks.
The planner stamps it on every segment (:attr:`~seqopt_core.types.Segment.language`),
so the engine tokenizes each segment for its own language and segments of
several languages can share one batch. Pure: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ConfigError

#: English names of the languages seqopt's built-in engines speak (for messages and docs).
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "ms": "Malay", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "sv": "Swedish",
    "sw": "Swahili", "tr": "Turkish", "zh": "Chinese",
}


def language_list(codes: Sequence[str]) -> str:
    """``"ar (Arabic), da (Danish), ..."``: codes with their names where known."""
    return ", ".join(f"{c} ({LANGUAGE_NAMES[c]})" if c in LANGUAGE_NAMES else c for c in codes)


def normalized_language(value: str) -> str:
    """``value`` as a language code (lowercase, trimmed); :class:`ValueError` when it is not
    one (two or three ASCII letters, ISO 639-1 preferred)."""
    code = value.strip().lower()
    if not (2 <= len(code) <= 3 and code.isascii() and code.isalpha()):
        raise ValueError(f"{value!r} is not a language code: give two letters (ISO 639-1), "
                         "e.g. 'en', 'fr', 'zh'")
    return code


def run_language(requested: str | None, engine: str, languages: Sequence[str], *,
                 source: str | None = None, key: str = "synthesis.language") -> str | None:
    """The language a run of ``engine`` speaks: ``requested`` when the engine speaks it,
    else its default (the first of ``languages``) when nothing is requested.

    Raises :class:`ConfigError` (``key``, after ``source``: where the value came from)
    naming every language the engine speaks when it does not speak ``requested``; an
    engine that declares no languages takes none (``None``)."""
    if requested is None:
        return languages[0] if languages else None
    code = requested.strip().lower()
    where = f"{source}: {key}" if source else key
    if not languages:
        raise ConfigError(f"{where}: engine {engine!r} declares no languages, so it cannot be asked "
                          f"for {requested!r}; leave the language unset")
    if code not in languages:
        name = f" ({LANGUAGE_NAMES[code]})" if code in LANGUAGE_NAMES else ""
        hint = (" Chatterbox Multilingual speaks 23 languages: use the multilingual profile (--profile "
                "multilingual), or engine \"chatterbox-multilingual\"."
                if engine != "chatterbox-multilingual" and code in LANGUAGE_NAMES else "")
        raise ConfigError(f"{where}: engine {engine!r} does not speak {requested!r}{name}; it speaks "
                          f"{language_list(languages)}.{hint}")
    return code


__all__ = ["LANGUAGE_NAMES", "language_list", "normalized_language", "run_language"]
