"""``chatterbox``: the exact number of text tokens Chatterbox's T3 receives.

It reproduces what ``ChatterboxTTS.generate`` does to a text before T3 sees it:
``punc_norm`` (chatterbox-tts 0.1.7), spaces replaced by ``[SPACE]``, the
released BPE ``tokenizer.json``, then the ``[START]`` and ``[STOP]`` tokens.
Bracketed event tags such as ``[laughter]`` are added tokens of that tokenizer,
so each counts as one token.

Only the small ``tokenizers`` package is needed; chatterbox and torch are not
imported. The tokenizer file is found, in order, from the ``tokenizer`` option,
the ``SEQOPT_TOKENIZER`` environment variable, or the Hugging Face cache of
``ResembleAI/chatterbox`` (filled by a first ``from_pretrained``). Nothing is
ever downloaded.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import TokenEstimatorSpec, TokenizerNotFoundError, hookimpl

TOKENIZER_ENV = "SEQOPT_TOKENIZER"
HF_REPO = "ResembleAI/chatterbox"
SPACE_TOKEN = "[SPACE]"
START_STOP_TOKENS = 2

# chatterbox-tts 0.1.7 ``punc_norm`` (tts.py; mtl_tts.py has the same): replacements applied in this order.
_PUNCTUATION_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    ("...", ", "),
    ("\u2026", ", "),
    (":", ","),
    (" - ", ", "),
    (";", ", "),
    ("\u2014", "-"),
    ("\u2013", "-"),
    (" ,", ","),
    ("\u201c", '"'),
    ("\u201d", '"'),
    ("\u2018", "'"),
    ("\u2019", "'"),
)
_SENTENCE_ENDERS = (".", "!", "?", "-", ",")
_EMPTY_TEXT_REPLACEMENT = "You need to add some text for me to talk."


def normalized_punctuation(text: str, replacements: tuple[tuple[str, str], ...],
                           enders: tuple[str, ...]) -> str:
    """The ``punc_norm`` of chatterbox-tts 0.1.7's three models, which differ only in their
    ``replacements`` and sentence ``enders``: an empty text becomes upstream's fixed line, the
    first letter is capitalised, runs of whitespace become one space, ``replacements`` are
    applied in order, and a text not ending in one of ``enders`` gets a full stop."""
    if not text:
        return _EMPTY_TEXT_REPLACEMENT
    if text[0].islower():
        text = text[0].upper() + text[1:]
    text = " ".join(text.split())
    for old, new in replacements:
        text = text.replace(old, new)
    text = text.rstrip(" ")
    if not text.endswith(enders):
        text += "."
    return text


def punc_norm(text: str) -> str:
    """What chatterbox-tts 0.1.7's ``punc_norm`` makes of ``text`` (tested against it)."""
    return normalized_punctuation(text, _PUNCTUATION_REPLACEMENTS, _SENTENCE_ENDERS)


#: How to point seqopt at the tokenizer (or do without it), in every spelling: the
#: environment, the command line, the library's ``overrides=`` and a config file.
MISSING_TOKENIZER_ADVICE = (
    f"Set {TOKENIZER_ENV}=/path/to/tokenizer.json, or give the path (or use the tokenizer-free "
    "'ratio' estimator): "
    "on the command line --tokenizer PATH (or --estimator ratio); "
    "from Python the estimator option 'tokenizer', e.g. build_planner(overrides="
    '{"estimator": {"options": {"tokenizer": "/path/to/tokenizer.json"}}}) '
    '(or overrides={"estimator": {"name": "ratio"}}); '
    "in a config file [estimator] with options = { tokenizer = \"/path/to/tokenizer.json\" } "
    '(or name = "ratio")'
)


def hf_hub_root() -> Path:
    """The Hugging Face hub cache folder (``HF_HUB_CACHE``, else ``HF_HOME``/hub, else ~/.cache)."""
    hub = os.environ.get("HF_HUB_CACHE")
    if hub:
        return Path(hub)
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(hf_home) / "hub"


def hf_cache_file(repo: str, filename: str, *, root: Path | None = None) -> Path | None:
    """``filename`` of ``repo`` in a Hugging Face cache (``root``, default the user's), if any:
    the snapshot ``refs/main`` names first, else the newest snapshot holding it. Shared by
    the three Chatterbox estimators (each model's tokenizer is in its repo's snapshot)."""
    folder = (root if root is not None else hf_hub_root()) / ("models--" + repo.replace("/", "--"))
    ref = folder / "refs" / "main"
    if ref.is_file():
        candidate = folder / "snapshots" / ref.read_text().strip() / filename
        if candidate.is_file():
            return candidate
    found = sorted(folder.glob(f"snapshots/*/{filename}"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def hf_cache_tokenizer() -> Path | None:
    """``tokenizer.json`` of ResembleAI/chatterbox in the local Hugging Face cache, if any."""
    return hf_cache_file(HF_REPO, "tokenizer.json")


def resolve_tokenizer_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where the Chatterbox tokenizer is; raises :class:`TokenizerNotFoundError` with
    every place it looked and how to point seqopt at the file."""
    looked: list[str] = []
    for origin, value in (("option 'tokenizer'", explicit),
                          (f"${TOKENIZER_ENV}", os.environ.get(TOKENIZER_ENV))):
        if value:
            path = Path(value).expanduser()
            if path.is_dir():
                path = path / "tokenizer.json"
            if path.is_file():
                return path
            raise TokenizerNotFoundError(
                f"{origin} points to {str(path)!r}, which is not a file. Give the path of "
                "Chatterbox's tokenizer.json (or of a checkpoint folder that holds it)"
            )
        looked.append(f"{origin} (not set)")
    cached = hf_cache_tokenizer()
    if cached:
        return cached
    looked.append(f"the Hugging Face cache of {HF_REPO} (not there)")
    raise TokenizerNotFoundError(
        "the 'chatterbox' estimator needs Chatterbox's tokenizer.json and found none; looked at "
        + ", ".join(looked) + ". " + MISSING_TOKENIZER_ADVICE
    )


@functools.lru_cache(maxsize=8)
def load_tokenizer_file(path: str, mtime_ns: int, required: tuple[str, ...], what: str) -> Any:
    """The ``tokenizers`` tokenizer in the JSON file ``path`` (cached per path and change
    time), checked to have the ``required`` tokens; a :class:`TokenizerNotFoundError` says
    what is wrong and that the file is not ``what`` (the tokenizer the estimator expects)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(path)
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise TokenizerNotFoundError(
            f"{path!r} is not a valid tokenizer file ({exc}); use {what} from its checkpoint"
        ) from None
    vocab = tokenizer.get_vocab()
    missing = [token for token in required if token not in vocab]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise TokenizerNotFoundError(
            f"{path!r} has no {', '.join(missing)} token{plural}: it is not {what}"
        )
    return tokenizer


def _load_tokenizer(path: str, mtime_ns: int) -> Any:
    return load_tokenizer_file(path, mtime_ns, ("[START]", "[STOP]", SPACE_TOKEN),
                               "Chatterbox's English tokenizer (tokenizer.json)")


class ChatterboxOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokenizer: str | None = Field(
        None, description=f"path to tokenizer.json (default: ${TOKENIZER_ENV}, then HF cache)"
    )


class ChatterboxEstimator:
    """Counts tokens exactly as chatterbox-tts 0.1.7 feeds them to T3."""

    def __init__(self, options: ChatterboxOptions | None = None) -> None:
        options = options or ChatterboxOptions()
        self.path = resolve_tokenizer_path(options.tokenizer)
        self._tokenizer = _load_tokenizer(str(self.path), self.path.stat().st_mtime_ns)

    def token_ids(self, text: str) -> list[int]:
        """The ids ``EnTokenizer.encode(punc_norm(text))`` gives, without start/stop."""
        normalized = punc_norm(text).replace(" ", SPACE_TOKEN)
        return self._tokenizer.encode(normalized).ids

    def count(self, text: str) -> int:
        return len(self.token_ids(text)) + START_STOP_TOKENS


@hookimpl
def seqopt_token_estimators() -> list[TokenEstimatorSpec]:
    return [
        TokenEstimatorSpec(
            name="chatterbox",
            factory=ChatterboxEstimator,
            options=ChatterboxOptions,
            requires=("tokenizers",),
            install="pip install tokenizers",
            description="exact: punc_norm + released tokenizer.json + start/stop (no torch)",
        )
    ]
