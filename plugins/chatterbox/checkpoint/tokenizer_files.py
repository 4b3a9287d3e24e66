"""Structural text-tokenizer files for the random Multilingual and Turbo checkpoints.

The released tokenizer files cannot be downloaded here, so the random checkpoints get files with
the released *structure* that upstream's own loaders read:

- Multilingual (``grapheme_mtl_merged_expanded_v1.json``, read by ``MTLTokenizer``): a
  ``tokenizers`` BPE over single graphemes (no merges) with ``[STOP]`` = 0, ``[UNK]`` = 1,
  ``[SPACE]`` = 2, ``[START]`` = 255 (``T3Config``'s start/stop text tokens), ``[PAD]``,
  ``[SEP]``, ``[CLS]``, ``[MASK]``, one ``[xx]`` token for each of the 23 languages, the
  ``[cj_?]`` Cangjie radicals Chinese is spelled with, and the NFKD-decomposed lower-case letters
  of the 23 languages' scripts (Latin, Greek, Cyrillic, Arabic, Hebrew, Devanagari, kana, Hangul
  jamo) plus digits and punctuation. ``Cangjie5_TC.json`` holds a few characters only.
- Turbo (``vocab.json``, ``merges.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``,
  ``added_tokens.json``, read by ``AutoTokenizer.from_pretrained``): a byte-level GPT-2 BPE with
  the 256 byte symbols and no merges, ``<|endoftext|>`` as its bos/eos/unk (and pad, as upstream
  sets it), and paralinguistic tags as added tokens.

**Token counts with these files are structural, not the released vocabularies'**: the same text
gives other (usually more) tokens than the released tokenizers would, so sequence lengths and
anything measured per token differ from the released models'.
"""

from __future__ import annotations

import json
from pathlib import Path

from chatterbox.mtl_tts import SUPPORTED_LANGUAGES

MTL_SPECIALS = {"[STOP]": 0, "[UNK]": 1, "[SPACE]": 2, "[START]": 255}
MTL_OTHER_SPECIALS = ("[PAD]", "[SEP]", "[CLS]", "[MASK]")
TURBO_EOS = "<|endoftext|>"
TURBO_TAGS = (
    "[laugh]", "[chuckle]", "[sigh]", "[gasp]", "[cough]", "[clear throat]", "[sniff]",
    "[groan]", "[shush]",
)
"""Paralinguistic tags of the structural Turbo tokenizer (added tokens)."""

_CANGJIE_SAMPLE = {
    "你": "onf", "好": "vnd", "我": "hqi", "中": "l", "文": "yk", "人": "o", "大": "k",
    "天": "mk", "日": "a", "月": "b", "木": "d", "水": "e", "火": "f", "土": "g", "山": "u",
    "口": "r", "世": "pt", "界": "wol",
}
"""A few characters with Cangjie codes, enough to run ``ChineseCangjieConverter``'s path."""


def _ranges(*spans: tuple[int, int]) -> list[str]:
    return [chr(c) for lo, hi in spans for c in range(lo, hi + 1)]


def mtl_graphemes() -> list[str]:
    """The letters, marks, digits and punctuation of the structural Multilingual vocabulary."""
    chars = list("!'(),-.:;?\"/&%0123456789") + _ranges(
        (0x61, 0x7A),      # Latin a-z
        (0x300, 0x36F),    # combining diacritics (NFKD of é, ü, ñ, å, ç, ğ, ş...)
        (0xDF, 0xDF), (0xE6, 0xE6), (0xF8, 0xF8), (0x131, 0x131), (0x142, 0x142),  # ß æ ø ı ł
        (0x3B1, 0x3C9),    # Greek
        (0x430, 0x44F), (0x451, 0x451),  # Cyrillic
        (0x621, 0x652),    # Arabic letters and harakat
        (0x5B0, 0x5C7), (0x5D0, 0x5EA),  # Hebrew points and letters
        (0x900, 0x97F),    # Devanagari
        (0x3041, 0x3096), (0x3099, 0x309C), (0x30A1, 0x30FC),  # kana, (semi-)voicing, ー
        (0x1100, 0x11FF),  # Hangul jamo (korean_normalize decomposes syllables into these)
        (0x3001, 0x3002), (0xFF0C, 0xFF0C), (0xFF1F, 0xFF1F), (0xFF01, 0xFF01),  # 、。，？！
    )
    return list(dict.fromkeys(chars))


def mtl_vocab() -> dict[str, int]:
    """Token -> id of the structural Multilingual vocabulary (ids below 2454)."""
    specials = [*MTL_OTHER_SPECIALS, *(f"[{code}]" for code in SUPPORTED_LANGUAGES)]
    specials += [f"[cj_{c}]" for c in "abcdefghijklmnopqrstuvwxyz."]
    vocab = dict(MTL_SPECIALS)
    free = (i for i in range(len(MTL_SPECIALS) + 10_000) if i not in vocab.values())
    for token in [*mtl_graphemes(), *specials]:
        vocab[token] = next(free)
    return vocab


def mtl_special_tokens() -> list[str]:
    """The bracketed tokens (kept whole by the tokenizer)."""
    return [t for t in mtl_vocab() if t.startswith("[") and t.endswith("]") and len(t) > 2]


def write_mtl_tokenizer(path: Path) -> None:
    """Write the structural ``grapheme_mtl_merged_expanded_v1.json`` to ``path``."""
    from tokenizers import AddedToken, Tokenizer
    from tokenizers.models import BPE
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(BPE(vocab=mtl_vocab(), merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t in mtl_special_tokens()]
    )
    tokenizer.save(str(path), pretty=True)


def write_cangjie_table(path: Path) -> None:
    """Write a small ``Cangjie5_TC.json`` (the released format: ``"char\\tcode"`` strings)."""
    entries = [f"{char}\t{code}" for char, code in _CANGJIE_SAMPLE.items()]
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=0), encoding="utf-8")


def _byte_symbols() -> list[str]:
    """GPT-2's byte-to-unicode table: 256 printable symbols, one per byte, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def turbo_tokenizer_files() -> dict[str, str]:
    """File name -> text of the structural Turbo (GPT-2 style) tokenizer."""
    vocab = {symbol: i for i, symbol in enumerate(_byte_symbols())}
    vocab[TURBO_EOS] = len(vocab)
    added = {tag: len(vocab) + i for i, tag in enumerate(TURBO_TAGS)}
    specials = {"bos_token": TURBO_EOS, "eos_token": TURBO_EOS, "unk_token": TURBO_EOS}
    config = {
        "tokenizer_class": "GPT2Tokenizer",
        "add_prefix_space": False,
        "model_max_length": 1024,
        "errors": "replace",
        **specials,
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": t == TURBO_EOS}
            for t, i in {TURBO_EOS: vocab[TURBO_EOS], **added}.items()
        },
    }
    dump = lambda obj: json.dumps(obj, ensure_ascii=False, indent=2) + "\n"  # noqa: E731
    return {
        "vocab.json": dump(vocab),
        "merges.txt": "#version: 0.2\n",
        "tokenizer_config.json": dump(config),
        "special_tokens_map.json": dump(specials),
        "added_tokens.json": dump(added),
    }
