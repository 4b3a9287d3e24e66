"""``chatterbox-multilingual``: the exact number of text tokens Chatterbox Multilingual's T3 receives.

It reproduces what ``ChatterboxMultilingualTTS.generate`` (chatterbox-tts 0.1.7) does to a
text before T3 sees it, for one language:

1. the multilingual ``punc_norm`` (the English one, plus the CJK sentence enders
   ``、，。？！`` that spare a text the final ``.``);
2. ``MTLTokenizer.encode``: lower-case, NFKD, then per language

   - ``zh``: words cut by spacy-pkuseg (when installed and its model is on disk) and joined
     with spaces, then every ``Lo`` character with a Cangjie code spelled as ``[cj_x]``
     tokens, its index among the characters sharing that code, and ``[cj_.]``;
   - ``ja``: kanji read as hiragana by pykakasi (when installed), then NFKD again;
   - ``he``: diacritics from dicta-onnx (when installed);
   - ``ko``: Hangul syllables decomposed into jamo, the text stripped;
   - ``ru``: stress marks from russian-text-stresser (when installed);

   then the ``[xx]`` language token in front, spaces replaced by ``[SPACE]``, and the
   tokenizer file ``grapheme_mtl_merged_expanded_v1.json``;
3. the ``[START]`` and ``[STOP]`` text tokens T3's config adds around them.

A language library that is not installed is skipped exactly where upstream skips it, so the
counts stay equal to upstream's in the same environment. One case cannot be equal without a
download, which this estimator never makes: spacy-pkuseg installed but its model not yet on
disk (upstream downloads it on first use). Chinese is then counted unsegmented, with a
warning; the segmenter adds one ``[SPACE]`` per word break, so such counts are low.

Only ``tokenizers`` (and the optional language libraries) is imported, never torch or
chatterbox. The tokenizer is found, in order, from the ``tokenizer`` option (the file, or a
checkpoint folder holding it), the ``SEQOPT_MTL_TOKENIZER`` environment variable, or the
Hugging Face cache of ``ResembleAI/chatterbox``. ``Cangjie5_TC.json`` is read from the
tokenizer's folder; without it Chinese is counted as upstream counts it when its Cangjie
table cannot load (characters left as they are).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from seqopt_core import OptionValueError, TokenEstimatorSpec, TokenizerNotFoundError, hookimpl
from seqopt_core.languages import LANGUAGE_NAMES as CORE_LANGUAGE_NAMES

from .chatterbox import _PUNCTUATION_REPLACEMENTS as ENGLISH_REPLACEMENTS
from .chatterbox import hf_cache_file, hf_hub_root, load_tokenizer_file, normalized_punctuation

log = logging.getLogger(__name__)

TOKENIZER_ENV = "SEQOPT_MTL_TOKENIZER"
HF_REPO = "ResembleAI/chatterbox"
TOKENIZER_FILE = "grapheme_mtl_merged_expanded_v1.json"
CANGJIE_FILE = "Cangjie5_TC.json"
SPACE_TOKEN = "[SPACE]"
START_STOP_TOKENS = 2

#: The languages of Chatterbox Multilingual (chatterbox-tts 0.1.7 ``SUPPORTED_LANGUAGES``): their
#: ISO 639-1 codes, in upstream's order (tested against it).
LANGUAGES: tuple[str, ...] = (
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ja", "ko", "ms", "nl", "no",
    "pl", "pt", "ru", "sv", "sw", "tr", "zh",
)
#: Their English names, by code.
LANGUAGE_NAMES: dict[str, str] = {code: CORE_LANGUAGE_NAMES[code] for code in LANGUAGES}


# --- punc_norm -------------------------------------------------------------------------------

# chatterbox-tts 0.1.7 ``mtl_tts.punc_norm`` ends sentences on the English enders and the
# CJK ones (、，。？！): a text ending in one gets no "." added. Its replacements are English's.
_SENTENCE_ENDERS = (".", "!", "?", "-", ",", "\u3001", "\uff0c", "\u3002", "\uff1f", "\uff01")


def punc_norm(text: str) -> str:
    """What chatterbox-tts 0.1.7's multilingual ``punc_norm`` makes of ``text`` (tested against it)."""
    return normalized_punctuation(text, ENGLISH_REPLACEMENTS, _SENTENCE_ENDERS)


# --- per-language preprocessing (pure functions and lazily loaded libraries) ------------------


def lower_nfkd(text: str) -> str:
    """``MTLTokenizer.preprocess_text``: lower-case, then Unicode NFKD."""
    return unicodedata.normalize("NFKD", text.lower())


_HANGUL_FIRST, _HANGUL_LAST = "\uac00", "\ud7af"  # upstream's range (past U+D7A3 too)
_JAMO_INITIAL, _JAMO_MEDIAL, _JAMO_FINAL = 0x1100, 0x1161, 0x11A7
_MEDIALS, _FINALS = 21, 28


def decompose_hangul(char: str) -> str:
    """A Hangul syllable as its initial, medial and (if any) final jamo; other characters as they are."""
    if not (_HANGUL_FIRST <= char <= _HANGUL_LAST):
        return char
    base = ord(char) - ord(_HANGUL_FIRST)
    initial = chr(_JAMO_INITIAL + base // (_MEDIALS * _FINALS))
    medial = chr(_JAMO_MEDIAL + (base % (_MEDIALS * _FINALS)) // _FINALS)
    final = chr(_JAMO_FINAL + base % _FINALS) if base % _FINALS else ""
    return initial + medial + final


def korean_jamo(text: str) -> str:
    """Upstream's ``korean_normalize``: every syllable decomposed, the result stripped."""
    return "".join(decompose_hangul(c) for c in text).strip()


def is_kanji(char: str) -> bool:
    """Upstream's kanji test: the CJK Unified Ideographs block U+4E00..U+9FFF."""
    return 0x4E00 <= ord(char) <= 0x9FFF


def join_kakasi_readings(items: list[dict[str, str]]) -> str:
    """Upstream's ``hiragana_normalize`` over pykakasi's ``convert`` output, before its NFKD.

    A phrase with any kanji becomes its hiragana reading (a leading space before a reading
    that starts with は or へ); anything else stays as written (upstream tests for an
    all-katakana phrase, but keeps the original in that branch too).
    """
    out = []
    for item in items:
        original, hiragana = item["orig"], item["hira"]
        if any(is_kanji(c) for c in original):
            if hiragana and hiragana[0] in ("\u306f", "\u3078"):  # は, へ
                hiragana = " " + hiragana
            out.append(hiragana)
        else:
            out.append(original)
    return "".join(out)


class _LazyLibrary:
    """A language library's helper, built on first use, or ``None`` when upstream would go without it.

    Upstream keeps one instance per process and skips its step (with a warning) when building
    it raises one of ``skipped`` (``ImportError`` for pykakasi; any ``Exception`` for
    dicta-onnx and russian-text-stresser, whose whole step sits in a ``try``); so does this,
    warning once and not trying again.
    """

    def __init__(self, build: Callable[[], Any], library: str, language: str,
                 skipped: tuple[type[BaseException], ...] = (ImportError,)) -> None:
        self._build, self._library, self._language, self._skipped = build, library, language, skipped
        self._value: Any = None
        self._tried = False

    def get(self) -> Any:
        if not self._tried:
            try:
                self._value = self._build()
            except self._skipped as exc:
                log.warning("%s not available (%s): %s text is counted without it, as upstream "
                            "generates it then", self._library, exc, self._language)
                self._value = None
            self._tried = True
        return self._value


def _build_kakasi() -> Any:
    import pykakasi

    return pykakasi.kakasi()


def _build_dicta() -> Any:
    from dicta_onnx import Dicta

    return Dicta()


def _build_stresser() -> Any:
    from russian_text_stresser.text_stresser import RussianTextStresser

    return RussianTextStresser()


_KAKASI = _LazyLibrary(_build_kakasi, "pykakasi", "Japanese")
_DICTA = _LazyLibrary(_build_dicta, "dicta_onnx", "Hebrew", (Exception,))
_STRESSER = _LazyLibrary(_build_stresser, "russian_text_stresser", "Russian", (Exception,))


def japanese_hiragana(text: str) -> str:
    """Upstream's ``hiragana_normalize``: kanji read as hiragana, then NFKD (unchanged without pykakasi)."""
    kakasi = _KAKASI.get()
    if kakasi is None:
        return text
    return unicodedata.normalize("NFKD", join_kakasi_readings(kakasi.convert(text)))


def hebrew_diacritics(text: str) -> str:
    """Upstream's ``add_hebrew_diacritics`` (unchanged without dicta-onnx, or when it fails)."""
    dicta = _DICTA.get()
    if dicta is None:
        return text
    try:
        return dicta.add_diacritics(text)
    except Exception as exc:  # upstream keeps the text on any failure of the library
        log.warning("Hebrew diacritization failed: %s", exc)
        return text


def russian_stress(text: str) -> str:
    """Upstream's ``add_russian_stress`` (unchanged without russian-text-stresser, or when it fails)."""
    stresser = _STRESSER.get()
    if stresser is None:
        return text
    try:
        return stresser.stress_text(text)
    except Exception as exc:  # upstream keeps the text on any failure of the library
        log.warning("Russian stress labeling failed: %s", exc)
        return text


# --- Chinese: pkuseg words and Cangjie codes --------------------------------------------------


class CangjieTable:
    """``ChineseCangjieConverter``'s two maps, built from ``Cangjie5_TC.json`` as upstream builds them.

    ``code_of`` keeps each character's last code in the file; ``characters_of`` lists, per code,
    every character of an entry with that code, in file order (repeats included). An entry
    that cannot be read stops the loading there, keeping what was read, as upstream's
    ``try`` around its loop does.
    """

    def __init__(self, entries: list[Any] | None = None) -> None:
        self.code_of: dict[str, str] = {}
        self.characters_of: dict[str, list[str]] = {}
        try:
            for entry in entries or ():
                character, code = entry.split("\t")[:2]
                self.code_of[character] = code
                self.characters_of.setdefault(code, []).append(character)
        except Exception as exc:  # upstream logs and keeps the part it read
            log.warning("Could not read the whole Cangjie table: %s", exc)

    def encode(self, character: str) -> str | None:
        """The character's code and, when it is not the first with that code, its index; or ``None``."""
        code = self.code_of.get(character)
        if code is None:
            return None
        index = self.characters_of[code].index(character)
        return code + (str(index) if index > 0 else "")


def cangjie_spelling(text: str, table: CangjieTable) -> str:
    """Every ``Lo`` character with a code as ``[cj_x]...[cj_.]``; the rest as it is."""
    out = []
    for char in text:
        code = table.encode(char) if unicodedata.category(char) == "Lo" else None
        if code is None:
            out.append(char)
        else:
            out.append("".join(f"[cj_{c}]" for c in code) + "[cj_.]")
    return "".join(out)


@functools.lru_cache(maxsize=8)
def _load_cangjie(path: str | None, mtime_ns: int) -> CangjieTable:
    if path is None:
        return CangjieTable()
    try:
        with open(path, encoding="utf-8") as handle:
            entries = json.load(handle)
    except Exception as exc:  # upstream: "Could not load Cangjie mapping", an empty table
        log.warning("Could not load the Cangjie table %s: %s", path, exc)
        return CangjieTable()
    return CangjieTable(entries)


def cangjie_table_path(folder: Path) -> Path | None:
    """``Cangjie5_TC.json`` beside the tokenizer, else in a Hugging Face cache inside that folder
    (where upstream's ``hf_hub_download(cache_dir=folder)`` keeps it); ``None`` when absent."""
    beside = folder / CANGJIE_FILE
    if beside.is_file():
        return beside
    return hf_cache_file(HF_REPO, CANGJIE_FILE, root=folder)


#: The model ``spacy_pkuseg.pkuseg()`` loads by default (downloaded to its home as ``<name>.zip``).
PKUSEG_MODEL = "spacy_ontonotes"


def load_chinese_segmenter() -> Any:
    """spacy-pkuseg's default segmenter as upstream builds it, or ``None`` where upstream has none.

    ``None`` when spacy-pkuseg is not installed (upstream skips segmentation then), and when
    its model is not on disk: upstream's ``pkuseg()`` would download it, and this estimator
    never downloads (a warning says the counts are low then).
    """
    try:
        import spacy_pkuseg
        from spacy_pkuseg.config import config as pkuseg_config
    except ImportError:
        log.warning("spacy_pkuseg not available: Chinese is counted unsegmented, as upstream "
                    "generates it")
        return None
    archive = Path(pkuseg_config.pkuseg_home) / f"{PKUSEG_MODEL}.zip"
    if not archive.exists():
        log.warning(
            "spacy-pkuseg's model is not in %s: upstream downloads it on first use and cuts "
            "Chinese into words (one [SPACE] token per break); until then Chinese is counted "
            "unsegmented, fewer tokens than upstream gives. Load Chatterbox Multilingual once "
            "(or run python -c \"import spacy_pkuseg; spacy_pkuseg.pkuseg()\") to fetch it",
            pkuseg_config.pkuseg_home,
        )
        return None
    try:
        return spacy_pkuseg.pkuseg()
    except ImportError:
        return None


def chinese_words(text: str, segmenter: Any) -> str:
    """The text cut into words joined by single spaces (as it is without a segmenter)."""
    return text if segmenter is None else " ".join(segmenter.cut(text))


# --- finding the files ------------------------------------------------------------------------


#: How to point seqopt at the tokenizer, in every spelling.
MISSING_TOKENIZER_ADVICE = (
    f"Set {TOKENIZER_ENV}=/path/to/{TOKENIZER_FILE} (or to the Chatterbox Multilingual "
    "checkpoint folder), or give the path: on the command line --tokenizer PATH; from Python "
    "the estimator option 'tokenizer', e.g. build_planner(overrides="
    '{"estimator": {"name": "chatterbox-multilingual", "options": {"tokenizer": "/path/to/folder"}}}); '
    'in a config file [estimator] name = "chatterbox-multilingual" with options = '
    '{ tokenizer = "/path/to/folder" }. A first ChatterboxMultilingualTTS.from_pretrained '
    f"fills the Hugging Face cache of {HF_REPO}, which is looked at last."
)


def _file_in(path: Path) -> Path:
    """``path`` itself, or the multilingual tokenizer file in the folder ``path``."""
    return path / TOKENIZER_FILE if path.is_dir() else path


def resolve_tokenizer_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where ``grapheme_mtl_merged_expanded_v1.json`` is; raises :class:`TokenizerNotFoundError`
    naming every place it looked and how to point seqopt at the file."""
    looked: list[str] = []
    for origin, value in (("option 'tokenizer'", explicit),
                          (f"${TOKENIZER_ENV}", os.environ.get(TOKENIZER_ENV))):
        if value:
            given = Path(value).expanduser()
            path = _file_in(given)
            if path.is_file():
                return path
            hint = ""
            if given.is_dir() and (given / "tokenizer.json").is_file():
                hint = " (the folder holds tokenizer.json: it looks like an English Chatterbox checkpoint)"
            elif given.is_dir() and (given / "vocab.json").is_file():
                hint = " (the folder holds vocab.json: it looks like a Chatterbox Turbo checkpoint)"
            raise TokenizerNotFoundError(
                f"{origin} points to {str(given)!r}, where there is no {TOKENIZER_FILE}{hint}. "
                f"Give the path of Chatterbox Multilingual's {TOKENIZER_FILE} (or of a checkpoint "
                "folder that holds it)"
            )
        looked.append(f"{origin} (not set)")
    cached = hf_cache_file(HF_REPO, TOKENIZER_FILE)
    if cached:
        return cached
    looked.append(f"the Hugging Face cache of {HF_REPO} in {hf_hub_root()} (no {TOKENIZER_FILE})")
    raise TokenizerNotFoundError(
        f"the 'chatterbox-multilingual' estimator needs {TOKENIZER_FILE} and found none; looked at "
        + ", ".join(looked) + ". " + MISSING_TOKENIZER_ADVICE
    )


def _load_tokenizer(path: str, mtime_ns: int) -> Any:
    # [START] and [STOP] are what upstream's MTLTokenizer asserts; the language tokens are
    # checked too: the English tokenizer.json has a few of them ([fr], [de]...), not all 23
    required = ("[START]", "[STOP]", *(f"[{code}]" for code in LANGUAGES))
    return load_tokenizer_file(path, mtime_ns, required,
                               f"Chatterbox Multilingual's tokenizer ({TOKENIZER_FILE}, one token per language)")


def unknown_language_error(language: object) -> OptionValueError:
    """The refusal of a language Chatterbox Multilingual does not speak, listing the 23 it does."""
    listed = ", ".join(f"{code} ({name})" for code, name in LANGUAGE_NAMES.items())
    return OptionValueError(
        f"the 'chatterbox-multilingual' estimator cannot count language {language!r}: "
        f"Chatterbox Multilingual speaks {len(LANGUAGES)} languages: {listed}",
        key="language",
    )


# --- the estimator ----------------------------------------------------------------------------


class ChatterboxMultilingualOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokenizer: str | None = Field(
        None,
        description=f"path to {TOKENIZER_FILE} or a Chatterbox Multilingual checkpoint folder "
                    f"(default: ${TOKENIZER_ENV}, then the HF cache of {HF_REPO})",
    )


class ChatterboxMultilingualEstimator:
    """Counts, for one language, the text tokens chatterbox-tts 0.1.7's Multilingual T3 receives."""

    def __init__(self, options: ChatterboxMultilingualOptions | None = None,
                 language: str = "en") -> None:
        code = language.strip().lower() if isinstance(language, str) else language
        if code not in LANGUAGE_NAMES:
            raise unknown_language_error(language)
        self.language: str = code
        options = options or ChatterboxMultilingualOptions()
        self.path = resolve_tokenizer_path(options.tokenizer)
        self._tokenizer = _load_tokenizer(str(self.path), self.path.stat().st_mtime_ns)
        self.cangjie_path: Path | None = None
        self._cangjie = CangjieTable()
        self._segmenter: Any = None
        self._segmenter_loaded = code != "zh"  # pkuseg's model loads on first use (seconds)
        if code == "zh":
            self.cangjie_path = cangjie_table_path(self.path.parent)
            if self.cangjie_path is None:
                log.warning("no %s beside %s: Chinese characters are counted as they are, as "
                            "upstream does when its Cangjie table cannot load", CANGJIE_FILE, self.path)
            mtime = self.cangjie_path.stat().st_mtime_ns if self.cangjie_path else 0
            self._cangjie = _load_cangjie(str(self.cangjie_path) if self.cangjie_path else None, mtime)

    def _chinese_segmenter(self) -> Any:
        if not self._segmenter_loaded:
            self._segmenter = load_chinese_segmenter()
            self._segmenter_loaded = True
        return self._segmenter

    @property
    def chinese_segmentation(self) -> bool:
        """Whether Chinese is cut into words (spacy-pkuseg and its model present; loads the
        segmenter if it is not loaded yet); ``False`` for other languages."""
        return self._chinese_segmenter() is not None

    def preprocessed(self, text: str) -> str:
        """The string ``MTLTokenizer.encode`` hands its tokenizer for ``punc_norm(text)``."""
        text = lower_nfkd(punc_norm(text))
        if self.language == "zh":
            text = cangjie_spelling(chinese_words(text, self._chinese_segmenter()), self._cangjie)
        elif self.language == "ja":
            text = japanese_hiragana(text)
        elif self.language == "he":
            text = hebrew_diacritics(text)
        elif self.language == "ko":
            text = korean_jamo(text)
        elif self.language == "ru":
            text = russian_stress(text)
        return f"[{self.language}]{text}".replace(" ", SPACE_TOKEN)

    def token_ids(self, text: str) -> list[int]:
        """The ids ``MTLTokenizer.encode(punc_norm(text), language_id)`` gives (language token
        included, start/stop not)."""
        return self._tokenizer.encode(self.preprocessed(text)).ids

    def count(self, text: str) -> int:
        """Every text token T3 receives for ``text`` as one segment: language token, text, start and stop."""
        return len(self.token_ids(text)) + START_STOP_TOKENS


def build_estimator(options: ChatterboxMultilingualOptions, language: str) -> ChatterboxMultilingualEstimator:
    """The registry's factory: the core passes the run's language."""
    return ChatterboxMultilingualEstimator(options, language)


@hookimpl
def seqopt_token_estimators() -> list[TokenEstimatorSpec]:
    return [
        TokenEstimatorSpec(
            name="chatterbox-multilingual",
            factory=build_estimator,
            options=ChatterboxMultilingualOptions,
            per_language=True,
            requires=("tokenizers",),
            install="pip install tokenizers",
            description="exact for Chatterbox Multilingual: its punc_norm, per-language "
                        "preprocessing, language token, tokenizer, start/stop (no torch)",
        )
    ]
