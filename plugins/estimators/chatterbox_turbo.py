"""``chatterbox-turbo``: the exact number of text tokens Chatterbox Turbo's T3 receives.

It reproduces what ``ChatterboxTurboTTS.generate`` (chatterbox-tts 0.1.7) does to a text:
Turbo's own ``punc_norm`` (fewer replacements than the English one: ``...``, ``;`` and
`` - `` are kept), then the GPT-2 tokenizer that ``AutoTokenizer.from_pretrained`` loads from
the checkpoint folder, called with ``truncation=True``. Its ``input_ids`` go to
``T3.inference_turbo`` as they are: Turbo adds **no** start/stop text tokens (its T3 puts
the conditioning, the text embeddings and one start-of-speech token side by side), so the
count is the number of ids, capped at the tokenizer's ``model_max_length`` as the truncation
caps them (1024 for GPT-2), plus a bos/eos only where ``tokenizer_config.json`` asks for them.

The tokenizer is rebuilt with the ``tokenizers`` package from the folder's ``vocab.json`` and
``merges.txt`` (byte-level BPE) and its added tokens (``tokenizer_config.json``'s
``added_tokens_decoder``, else ``added_tokens.json``, and the named special tokens), as
transformers builds it; neither transformers, torch nor chatterbox is imported. The folder
is found, in order, from the ``tokenizer`` option, the ``SEQOPT_TURBO_TOKENIZER``
environment variable, or the Hugging Face cache of ``ResembleAI/chatterbox-turbo``.
Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import TokenEstimatorSpec, TokenizerNotFoundError, hookimpl

from .chatterbox import hf_cache_file, hf_hub_root, normalized_punctuation

TOKENIZER_ENV = "SEQOPT_TURBO_TOKENIZER"
HF_REPO = "ResembleAI/chatterbox-turbo"
VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
CONFIG_FILE = "tokenizer_config.json"
ADDED_TOKENS_FILE = "added_tokens.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
REQUIRED_FILES = (VOCAB_FILE, MERGES_FILE)
# transformers' "no limit" model_max_length (VERY_LARGE_INTEGER) and anything near it: no truncation
_NO_LIMIT = int(1e20)
_NAMED_SPECIALS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                   "mask_token")


# --- punc_norm -------------------------------------------------------------------------------

# chatterbox-tts 0.1.7 ``tts_turbo.punc_norm``: replacements applied in this order.
_PUNCTUATION_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    ("\u2026", ", "),
    (":", ","),
    ("\u2014", "-"),
    ("\u2013", "-"),
    (" ,", ","),
    ("\u201c", '"'),
    ("\u201d", '"'),
    ("\u2018", "'"),
    ("\u2019", "'"),
)
_SENTENCE_ENDERS = (".", "!", "?", "-", ",")


def punc_norm(text: str) -> str:
    """What chatterbox-tts 0.1.7's Turbo ``punc_norm`` makes of ``text`` (tested against it)."""
    return normalized_punctuation(text, _PUNCTUATION_REPLACEMENTS, _SENTENCE_ENDERS)


# --- finding the folder -----------------------------------------------------------------------

MISSING_TOKENIZER_ADVICE = (
    f"Set {TOKENIZER_ENV}=/path/to/turbo-checkpoint (the folder with {VOCAB_FILE} and "
    f"{MERGES_FILE}), or give the path: on the command line --tokenizer PATH; from Python the "
    "estimator option 'tokenizer', e.g. build_planner(overrides="
    '{"estimator": {"name": "chatterbox-turbo", "options": {"tokenizer": "/path/to/folder"}}}); '
    'in a config file [estimator] name = "chatterbox-turbo" with options = '
    '{ tokenizer = "/path/to/folder" }. A first ChatterboxTurboTTS.from_pretrained fills the '
    f"Hugging Face cache of {HF_REPO}, which is looked at last."
)


def _missing_files(folder: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (folder / name).is_file()]


def resolve_tokenizer_folder(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The Turbo checkpoint folder holding ``vocab.json`` and ``merges.txt`` (a file given
    stands for its folder); raises :class:`TokenizerNotFoundError` naming every place looked."""
    looked: list[str] = []
    for origin, value in (("option 'tokenizer'", explicit),
                          (f"${TOKENIZER_ENV}", os.environ.get(TOKENIZER_ENV))):
        if value:
            given = Path(value).expanduser()
            folder = given.parent if given.is_file() else given
            missing = _missing_files(folder)
            if not missing:
                return folder
            hint = ""
            if (folder / "tokenizer.json").is_file():
                hint = " (it holds tokenizer.json: it looks like an English Chatterbox checkpoint)"
            elif (folder / "grapheme_mtl_merged_expanded_v1.json").is_file():
                hint = " (it looks like a Chatterbox Multilingual checkpoint)"
            raise TokenizerNotFoundError(
                f"{origin} points to {str(given)!r}, but {str(folder)!r} has no "
                f"{' and no '.join(missing)}{hint}. Give a Chatterbox Turbo checkpoint folder"
            )
        looked.append(f"{origin} (not set)")
    cached = hf_cache_file(HF_REPO, VOCAB_FILE)
    if cached and not _missing_files(cached.parent):
        return cached.parent
    looked.append(f"the Hugging Face cache of {HF_REPO} in {hf_hub_root()} "
                  f"(no {VOCAB_FILE} with {MERGES_FILE})")
    raise TokenizerNotFoundError(
        "the 'chatterbox-turbo' estimator needs Chatterbox Turbo's tokenizer files "
        f"({VOCAB_FILE}, {MERGES_FILE}) and found none; looked at " + ", ".join(looked) + ". "
        + MISSING_TOKENIZER_ADVICE
    )


# --- building the tokenizer as transformers does ----------------------------------------------


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise TokenizerNotFoundError(f"{str(path)!r} is not valid JSON ({exc})") from None


def _token_text(value: Any) -> str | None:
    """A special token as a string: transformers writes it as the string or an AddedToken dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class TurboTokenizer:
    """The rebuilt tokenizer and what ``generate``'s call adds to and caps its ids with."""

    tokenizer: Any
    max_length: int | None
    bos_id: int | None
    eos_id: int | None

    def input_ids(self, text: str) -> list[int]:
        """``tokenizer(text, truncation=True).input_ids`` (no padding: one text)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        ids = ([self.bos_id] if self.bos_id is not None else []) + ids
        ids = ids + ([self.eos_id] if self.eos_id is not None else [])
        if self.max_length is not None and len(ids) > self.max_length:
            tail = [self.eos_id] if self.eos_id is not None else []
            ids = ids[: self.max_length - len(tail)] + tail  # truncation keeps the added tokens
        return ids


def _added_tokens(folder: Path, config: dict[str, Any], specials: dict[str, str]) -> list[Any]:
    """The tokens transformers adds to the byte-level BPE, with their flags, in id order."""
    from tokenizers import AddedToken

    decoder = config.get("added_tokens_decoder")
    if isinstance(decoder, dict) and decoder:
        flags = ("single_word", "lstrip", "rstrip", "normalized", "special")
        return [AddedToken(entry["content"], **{k: bool(entry[k]) for k in flags if k in entry})
                for _, entry in sorted(decoder.items(), key=lambda item: int(item[0]))]
    encoder = _read_json(folder / ADDED_TOKENS_FILE) or {}
    special_texts = set(specials.values())
    return [AddedToken(text, rstrip=False, lstrip=False, normalized=text not in special_texts,
                       special=text in special_texts)
            for text, _ in sorted(encoder.items(), key=lambda item: item[1])]


def _extra_special_tokens(config: dict[str, Any], special_map: dict[str, Any]) -> list[str]:
    """The unnamed special tokens (``additional_special_tokens``, transformers 5's
    ``extra_special_tokens``) the config, else the special tokens map, lists."""
    for source in (config, special_map):
        for key in ("additional_special_tokens", "extra_special_tokens"):
            value = source.get(key)
            if isinstance(value, list):
                return [text for text in map(_token_text, value) if text]
    return []


@functools.lru_cache(maxsize=8)
def _load_tokenizer(folder: str, stamp: tuple[int, ...]) -> TurboTokenizer:
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import BPE

    root = Path(folder)
    config = _read_json(root / CONFIG_FILE) or {}
    special_map = _read_json(root / SPECIAL_TOKENS_FILE) or {}
    specials: dict[str, str] = {}
    for key in _NAMED_SPECIALS:
        text = _token_text(config.get(key)) or _token_text(special_map.get(key))
        if text:
            specials[key] = text
    try:
        model = BPE.from_file(str(root / VOCAB_FILE), str(root / MERGES_FILE), dropout=None,
                              continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False)
    except Exception as exc:  # tokenizers raises a bare Exception on bad files
        raise TokenizerNotFoundError(
            f"{folder!r}: {VOCAB_FILE} and {MERGES_FILE} are not a valid GPT-2 BPE ({exc}); use "
            "the files of the Chatterbox Turbo checkpoint"
        ) from None
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
        add_prefix_space=bool(config.get("add_prefix_space", False)))
    tokenizer.decoder = decoders.ByteLevel()
    added = _added_tokens(root, config, specials)
    tokenizer.add_tokens(added)
    present = {token.content for token in added}
    named = [*specials.values(), *_extra_special_tokens(config, special_map)]
    tokenizer.add_special_tokens([AddedToken(text, special=True)
                                  for text in dict.fromkeys(named) if text not in present])

    def special_id(flag: str, key: str) -> int | None:
        if not config.get(flag) or key not in specials:
            return None
        return tokenizer.token_to_id(specials[key])

    limit = config.get("model_max_length")
    max_length = int(limit) if isinstance(limit, (int, float)) and limit < _NO_LIMIT else None
    return TurboTokenizer(tokenizer, max_length, special_id("add_bos_token", "bos_token"),
                          special_id("add_eos_token", "eos_token"))


def _stamp(folder: Path) -> tuple[int, ...]:
    """Modification times of the folder's tokenizer files (a changed file reloads)."""
    names = (*REQUIRED_FILES, CONFIG_FILE, ADDED_TOKENS_FILE, SPECIAL_TOKENS_FILE)
    return tuple((folder / n).stat().st_mtime_ns if (folder / n).is_file() else -1 for n in names)


# --- the estimator ----------------------------------------------------------------------------


class ChatterboxTurboOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokenizer: str | None = Field(
        None,
        description=f"a Chatterbox Turbo checkpoint folder (with {VOCAB_FILE} and {MERGES_FILE}); "
                    f"default: ${TOKENIZER_ENV}, then the HF cache of {HF_REPO}",
    )


class ChatterboxTurboEstimator:
    """Counts the text tokens chatterbox-tts 0.1.7's Turbo T3 receives (no start/stop tokens)."""

    def __init__(self, options: ChatterboxTurboOptions | None = None) -> None:
        options = options or ChatterboxTurboOptions()
        self.path = resolve_tokenizer_folder(options.tokenizer)
        self._tokenizer = _load_tokenizer(str(self.path), _stamp(self.path))

    @property
    def max_length(self) -> int | None:
        """The tokenizer's ``model_max_length``: longer texts are cut to it (``None``: no cap)."""
        return self._tokenizer.max_length

    def token_ids(self, text: str) -> list[int]:
        """The ``input_ids`` Turbo's ``generate`` passes to T3 for ``text``."""
        return self._tokenizer.input_ids(punc_norm(text))

    def count(self, text: str) -> int:
        return len(self.token_ids(text))


@hookimpl
def seqopt_token_estimators() -> list[TokenEstimatorSpec]:
    return [
        TokenEstimatorSpec(
            name="chatterbox-turbo",
            factory=ChatterboxTurboEstimator,
            options=ChatterboxTurboOptions,
            requires=("tokenizers",),
            install="pip install tokenizers",
            description="exact for Chatterbox Turbo: its punc_norm + the GPT-2 tokenizer, no "
                        "start/stop tokens (no torch)",
        )
    ]
