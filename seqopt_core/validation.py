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


def error_lines(exc: ValidationError, prefix: str = "") -> list[str]:
    """One ``  key.path: what is wrong`` line per error of ``exc``."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
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
    lines = error_lines(exc, prefix=f"{slot}.options")
    for key in unknown_keys(exc):
        close = difflib.get_close_matches(key, accepted, n=1)
        if close:
            lines.append(f"  did you mean {close[0]!r} instead of {key!r}?")
    where = f"{source}: " if source else ""
    allowed = ", ".join(f"{k} (default {_default(model, k)})" for k in accepted) or "no options"
    return ConfigError(f"{where}invalid options for {slot} {name!r}\n" + "\n".join(lines)
                       + f"\n  ({slot} {name!r} accepts: {allowed})")


def _default(model: type[BaseModel], key: str) -> str:
    field = model.model_fields[key]
    if field.is_required():
        return "required"
    value: Any = field.get_default(call_default_factory=True)
    return repr(value)
