"""pydantic validation errors as seqopt messages: where, what, and what is allowed.

Both a config file (``seqopt_core.config``) and a library call
(:meth:`seqopt_core.PluginHost.create`) validate a strategy's options with the
strategy's pydantic model; both report a failure through these functions, so
the user reads the same message whichever way the options came in.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ConfigError

#: Errors listed in one message; past these, only how many more there are.
MAX_ERROR_LINES = 20
#: Longest key shown in a message (a longer one is shortened in the middle).
MAX_KEY_CHARS = 80


def short_key(key: str, limit: int = MAX_KEY_CHARS) -> str:
    """``key`` as shown in a message: at most about ``limit`` characters."""
    return key if len(key) <= limit else f"{key[: limit * 2 // 3]}...{key[-(limit // 4):]}"


def cap_lines(lines: list[str], more: int) -> list[str]:
    """``lines``, then ``  ... and N more errors`` when ``more`` were left out."""
    if more <= 0:
        return lines
    return [*lines, f"  ... and {more} more error{'s' if more != 1 else ''} (fix these first; "
                    f"at most {MAX_ERROR_LINES} are listed)"]


def field_error(model: type[BaseModel], key: str, value: Any, message: str) -> ValidationError:
    """A :class:`ValidationError` of ``model`` located at option ``key``: raised from a
    ``model_validator`` that checks several fields together, it names the option
    (``splitter.options.language``), not just the options table."""
    return ValidationError.from_exception_data(model.__name__, [{
        "type": "value_error", "loc": (key,), "input": value,
        "ctx": {"error": ValueError(message)},
    }])


def error_lines(exc: ValidationError, prefix: str = "", limit: int | None = None) -> list[str]:
    """One ``  key.path: what is wrong`` line per error of ``exc`` (the first ``limit``)."""
    lines = []
    for err in exc.errors()[:limit]:
        loc = short_key(".".join(str(p) for p in (prefix, *err["loc"]) if p != ""))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return lines


def unknown_keys(exc: ValidationError) -> list[str]:
    """The top-level keys ``exc`` rejects as unknown."""
    return [str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden" and e["loc"]]


def options_error(slot: str, name: str, model: type[BaseModel], exc: ValidationError,
                  source: str | None = None) -> ConfigError:
    """A :class:`ConfigError` for options of strategy ``name`` that ``model`` refused.

    It names the strategy, each bad key (with a close match for a misspelled
    one), and every key the strategy accepts with its default.
    """
    accepted = list(model.model_fields)
    total = exc.error_count()
    lines = error_lines(exc, prefix=f"{slot}.options", limit=MAX_ERROR_LINES)
    for key in unknown_keys(exc)[:MAX_ERROR_LINES]:
        close = difflib.get_close_matches(key, accepted, n=1)
        if close:
            lines.append(f"  did you mean {close[0]!r} instead of {short_key(key)!r}?")
    where = f"{source}: " if source else ""
    allowed = ", ".join(f"{k} (default {_default(model, k)})" for k in accepted) or "no options"
    return ConfigError(f"{where}invalid options for {slot} {name!r}\n"
                       + "\n".join(cap_lines(lines, total - min(total, MAX_ERROR_LINES)))
                       + f"\n  ({slot} {name!r} accepts: {allowed})")


def _default(model: type[BaseModel], key: str) -> str:
    field = model.model_fields[key]
    if field.is_required():
        return "required"
    value: Any = field.get_default(call_default_factory=True)
    return repr(value)
