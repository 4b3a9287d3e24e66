"""The ``chatterbox-multilingual`` and ``chatterbox-turbo`` estimators count what upstream feeds T3.

Every count is compared with chatterbox-tts 0.1.7 itself: for Multilingual, ``len`` of
``MTLTokenizer.text_to_tokens(mtl_tts.punc_norm(text), language_id=lang)`` plus the start and
stop tokens ``generate`` pads it with; for Turbo, ``len`` of the ``input_ids`` that
``AutoTokenizer`` (loaded from the folder as ``from_local`` loads it) gives for
``tts_turbo.punc_norm(text)`` with ``padding=True, truncation=True``, which go to T3 as they
are. The tokenizer files are the tiny random checkpoints' structural ones, written by the
same writer as ``seqopt make-checkpoint --model multilingual|turbo``.

``MTLTokenizer`` fetches its Cangjie table with ``hf_hub_download`` and builds spacy-pkuseg's
segmenter, whose model it would download: both are pointed at the folder / made unavailable
as ``tests/test_checkpoint_models.py`` does (no network here), and the estimator is shown
the same pkuseg situation (an empty pkuseg home: no model on disk). A fake segmenter stands
in for pkuseg's model where segmentation itself is tested.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqopt_core import OptionValueError, StrategyBuildError, TokenizerNotFoundError
from seqopt_core.testing import make_host
from seqopt_plugins.estimators import chatterbox_multilingual as cbm
from seqopt_plugins.estimators import chatterbox_turbo as cbt

pytest.importorskip("chatterbox.mtl_tts", reason="needs the chatterbox extra: seqopt[chatterbox]")

from chatterbox import mtl_tts, tts_turbo  # noqa: E402
from chatterbox.models.tokenizers import tokenizer as upstream_tokenizer  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Fixtures: the tiny checkpoints' tokenizer files, upstream's tokenizers over them
# ---------------------------------------------------------------------------------------------


def _write_tokenizer_files(folder: Path, model: str) -> Path:
    """The structural tokenizer files ``write_random_checkpoint`` puts in a tiny ``model`` folder."""
    from seqopt_plugins.chatterbox.checkpoint.random_writer import write_structural_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    write_structural_tokenizer(model, folder)
    return folder


@pytest.fixture(scope="module")
def mtl_dir(tmp_path_factory) -> Path:
    return _write_tokenizer_files(tmp_path_factory.mktemp("mtl-tiny"), "multilingual")


@pytest.fixture(scope="module")
def turbo_dir(tmp_path_factory) -> Path:
    return _write_tokenizer_files(tmp_path_factory.mktemp("turbo-tiny"), "turbo")


@pytest.fixture(scope="module")
def empty_pkuseg_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pkuseg-home-empty")


@contextlib.contextmanager
def _pkuseg(home: Path, segmenter_class=None):
    """spacy-pkuseg with its model home at ``home`` and ``pkuseg`` replaced by
    ``segmenter_class`` (default: one that raises ImportError, as a missing package does)."""
    import spacy_pkuseg
    from spacy_pkuseg.config import config

    def unavailable(*_args, **_kwargs):
        raise ImportError("pkuseg's model is not installed (no network)")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config, "pkuseg_home", str(home))
        mp.setattr(spacy_pkuseg, "pkuseg", segmenter_class or unavailable)
        yield


def _upstream_mtl(folder: Path) -> upstream_tokenizer.MTLTokenizer:
    """Upstream's ``MTLTokenizer`` as ``from_local`` builds it, its Cangjie table from ``folder``.

    Call it inside :func:`_pkuseg`: the segmenter is built here, once.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(upstream_tokenizer, "hf_hub_download",
                   lambda **kwargs: str(folder / kwargs["filename"]))
        return upstream_tokenizer.MTLTokenizer(str(folder / cbm.TOKENIZER_FILE))


def _mtl_pair(folder: Path, pkuseg_home: Path, segmenter_class=None, lang: str = "zh"):
    """Upstream's ``MTLTokenizer`` and the estimator for ``lang`` over ``folder``, both built
    seeing the same spacy-pkuseg (see :func:`_pkuseg`)."""
    with _pkuseg(pkuseg_home, segmenter_class):
        upstream = _upstream_mtl(folder)
        est = cbm.ChatterboxMultilingualEstimator(
            cbm.ChatterboxMultilingualOptions(tokenizer=str(folder)), lang)
        est.chinese_segmentation  # noqa: B018 -- its segmenter loads now, on first use
    return upstream, est


@pytest.fixture(scope="module")
def upstream_mtl(mtl_dir, empty_pkuseg_home):
    with _pkuseg(empty_pkuseg_home):
        return _upstream_mtl(mtl_dir)


@pytest.fixture(scope="module")
def mtl_estimators(mtl_dir, empty_pkuseg_home):
    """One estimator per language, each seeing no pkuseg model, as upstream does here."""
    options = cbm.ChatterboxMultilingualOptions(tokenizer=str(mtl_dir))
    with _pkuseg(empty_pkuseg_home):
        estimators = {lang: cbm.ChatterboxMultilingualEstimator(options, lang) for lang in cbm.LANGUAGES}
        assert not estimators["zh"].chinese_segmentation  # (its segmenter loads here, on first use)
    return estimators


def upstream_mtl_count(tokenizer, text: str, lang: str) -> int:
    """What ``ChatterboxMultilingualTTS.generate`` hands T3: punc_norm, text_to_tokens, [START]/[STOP]."""
    tokens = tokenizer.text_to_tokens(mtl_tts.punc_norm(text), language_id=lang)
    assert tokens.dim() == 2 and tokens.shape[0] == 1
    return tokens.shape[1] + 2


@pytest.fixture(scope="module")
def upstream_turbo(turbo_dir):
    """Turbo's text tokenizer as ``ChatterboxTurboTTS.from_local`` loads it."""
    return _auto_tokenizer(turbo_dir)


def _auto_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def upstream_turbo_ids(tokenizer, text: str) -> list[int]:
    """The ids ``ChatterboxTurboTTS.generate`` passes to ``T3.inference_turbo`` (no start/stop)."""
    ids = tokenizer(tts_turbo.punc_norm(text), return_tensors="pt", padding=True,
                    truncation=True).input_ids
    assert ids.shape[0] == 1
    return ids[0].tolist()


# ---------------------------------------------------------------------------------------------
# Text drawn from each language's script, with the punctuation punc_norm and NFKD rewrite
# ---------------------------------------------------------------------------------------------


def _chars(*spans: tuple[int, int]) -> list[str]:
    return [chr(c) for lo, hi in spans for c in range(lo, hi + 1)]


_LATIN = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
SCRIPTS: dict[str, list[str]] = {
    "en": _LATIN,
    "da": _LATIN + list("æøåÆØÅé"),
    "de": _LATIN + list("äöüßÄÖÜẞ„“‚‘"),
    "es": _LATIN + list("ñáéíóúüÑÁÉ¿¡"),
    "fi": _LATIN + list("äöåÄÖšž"),
    "fr": _LATIN + list("éèêëàâçîïôûùüÿœæÉÀÇ«»\u202f"),
    "it": _LATIN + list("àèéìòùÈ"),
    "ms": _LATIN,
    "nl": _LATIN + list("ëïéèĳĲ"),
    "no": _LATIN + list("æøåÆØÅ"),
    "pl": _LATIN + list("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ"),
    "pt": _LATIN + list("ãõâêôáéíóúçàÃÇ"),
    "sv": _LATIN + list("åäöÅÄÖ"),
    "sw": _LATIN,
    "tr": _LATIN + list("çğıöşüİÇĞÖŞÜ"),
    "ru": _chars((0x410, 0x44F)) + ["ё", "Ё"],
    "el": _chars((0x391, 0x3A9), (0x3B1, 0x3C9)) + list("άέήίόύώςΆΈΉΊΌΎΏϊϋΐΰ\u037e\u0387"),
    "ar": _chars((0x621, 0x64A), (0x64B, 0x652), (0x660, 0x669)) + list("،؟؛ـ"),
    "he": _chars((0x5D0, 0x5EA), (0x5B0, 0x5C7)) + ["־", "״", "׳"],
    "hi": _chars((0x900, 0x97F)),
    "ja": _chars((0x3041, 0x3096), (0x30A1, 0x30FC)) + list("日本語東京私行見食大学生先月今時間気電車駅人母花部屋箱春") +
          list("、。「」！？ｶﾀｶﾅﾞﾟＡ１"),
    "ko": _chars((0xAC00, 0xAC40), (0xB098, 0xB0B0), (0xD558, 0xD56B), (0xD7A0, 0xD7AF),
                 (0x3131, 0x3163)),
    "zh": list("你好我中文人大天日月木水火土山口世界的是了不在有这个们来到时说要就出会可也你对生能而子那得于"
               "着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部"),
}
assert set(SCRIPTS) == set(cbm.LANGUAGES)

_SHARED = [" ", " ", "  ", "\n", "\t", "\u00a0", ".", ",", "!", "?", "...", "\u2026", ":", ";",
           " - ", "-", "\u2014", "\u2013", "\u201c", "\u201d", "\u2018", "\u2019", "'", '"', "(",
           ")", "0", "7", "42", "\u00b4", "\u00a8", "\ufb01", "\u00bd", "\u3001", "\uff0c",
           "\u3002", "\uff1f", "\uff01", "[laughter]"]


def script_text(lang: str) -> st.SearchStrategy[str]:
    letters = SCRIPTS[lang]
    piece = st.one_of(st.sampled_from(letters), st.sampled_from(letters), st.sampled_from(_SHARED))
    return st.lists(piece, max_size=30).map("".join)


#: Real sentences, one or two per language (Japanese with kanji, Korean, the RTL scripts...).
SENTENCES: dict[str, list[str]] = {
    "ar": ["مرحبا بالعالم. كيف حالك اليوم؟", "ذهبتُ إلى السوقِ صباحاً، واشتريتُ خبزاً."],
    "da": ["Hvor ligger den nærmeste togstation?", "Jeg drikker kaffe hver morgen; det er skønt."],
    "de": ["Grüße aus Köln: Das Wetter ist schön!", "„Wie spät ist es?“, fragte er – leise."],
    "el": ["Γειά σου κόσμε· τι κάνεις σήμερα;", "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας."],
    "en": ["Hello there... it's me: “Bob” — your neighbour.", "The quick brown fox jumps over the lazy dog"],
    "es": ["¿Dónde está la biblioteca? ¡Gracias!", "El niño comió pan con mantequilla."],
    "fi": ["Hyvää huomenta! Mitä kuuluu?", "Järvellä on paljon saaria ja mökkejä."],
    "fr": ["Bonjour à tous ; comment ça va ?", "« L'été dernier, nous sommes allés à Paris… »"],
    "he": ["שלום עולם, מה שלומך היום?", "הספר נמצא על השולחן בחדר."],
    "hi": ["नमस्ते दुनिया। आप कैसे हैं?", "मैं कल दिल्ली जाऊँगा॥"],
    "it": ["Buongiorno, com'è andata la giornata?", "Perché non vieni più spesso?"],
    "ja": ["私は東京へ行きます。", "今日は天気がいいですね！カタカナとひらがなも使います。",
           "日本語の文章を読むのは楽しい", "母は部屋で花を見ます。春が来た"],
    "ko": ["안녕하세요, 반갑습니다!", "저는 서울에서 살고 있어요. 한국어를 공부합니다"],
    "ms": ["Selamat pagi, apa khabar?", "Saya suka makan nasi lemak."],
    "nl": ["Goedemorgen! Hoe gaat het met je?", "Het ĳs op de sloot is dun."],
    "no": ["Hvor er nærmeste butikk?", "Vi går på tur i skogen på søndag."],
    "pl": ["Dzień dobry! Jak się masz?", "Zażółć gęślą jaźń."],
    "pt": ["Olá, tudo bem? Não sei.", "A educação é a chave do coração."],
    "ru": ["Привет, мир! Как дела?", "Съешь же ещё этих мягких французских булок, да выпей чаю."],
    "sv": ["Hej! Hur mår du idag?", "Vi åker till Göteborg på måndag."],
    "sw": ["Habari ya asubuhi? Nzuri sana.", "Ninapenda kusoma vitabu"],
    "tr": ["Merhaba dünya! İstanbul'a gidiyorum.", "Iğdır'da ılık bir gün geçirdik."],
    "zh": ["你好世界。我是中国人，今天天气很好！", "我们在山口看日月，大火土木水。", "他说：“这本书很有意思”"],
}
assert set(SENTENCES) == set(cbm.LANGUAGES)

#: Texts every language is checked on too: empty (punc_norm's stand-in sentence), NFKD
#: making a leading space (´ is a space and a combining accent), ligatures, fractions.
EDGE_CASES = ["", "\u00b4", "\u00a8 x", "\ufb01 \u00bd \u2162", "A\u00b4", "...", " - ", "\u3002"]


# ---------------------------------------------------------------------------------------------
# (a) Multilingual counts equal upstream's, per language
# ---------------------------------------------------------------------------------------------


def test_languages_are_upstreams():
    assert cbm.LANGUAGE_NAMES == mtl_tts.SUPPORTED_LANGUAGES
    assert cbm.LANGUAGES == tuple(mtl_tts.SUPPORTED_LANGUAGES) and len(cbm.LANGUAGES) == 23


@given(st.one_of(*(script_text(lang) for lang in cbm.LANGUAGES)))
@settings(max_examples=300, deadline=None)
def test_mtl_punc_norm_matches_chatterbox(text):
    assert cbm.punc_norm(text) == mtl_tts.punc_norm(text)


@pytest.mark.parametrize("lang", cbm.LANGUAGES)
def test_mtl_counts_real_sentences_as_upstream(lang, upstream_mtl, mtl_estimators):
    est = mtl_estimators[lang]
    assert est.language == lang
    for text in SENTENCES[lang] + [EDGE_CASES[1] + t for t in SENTENCES[lang]] + EDGE_CASES:
        ids = upstream_mtl.encode(mtl_tts.punc_norm(text), language_id=lang)
        assert est.token_ids(text) == ids, text
        assert est.count(text) == upstream_mtl_count(upstream_mtl, text, lang) == len(ids) + 2
        # the language token leads
        assert ids[0] == upstream_mtl.tokenizer.token_to_id(f"[{lang}]")


@pytest.mark.parametrize("lang", cbm.LANGUAGES)
def test_mtl_counts_generated_text_as_upstream(lang, upstream_mtl, mtl_estimators):
    est = mtl_estimators[lang]

    @given(script_text(lang))
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(text):
        assert est.count(text) == upstream_mtl_count(upstream_mtl, text, lang)

    check()


def test_mtl_preprocessing_steps_are_really_applied(mtl_estimators):
    """The per-language steps change what is counted (so the equalities above test them)."""
    ko = mtl_estimators["ko"].preprocessed("한국어")
    assert ko == "[ko]" + "".join(cbm.decompose_hangul(c) for c in "한국어") + "."
    assert ko == "[ko]\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165."
    # kanji read as hiragana, a reading that starts with は or へ after a space; katakana kept
    ja = mtl_estimators["ja"].preprocessed("私は東京へ行きます")
    assert ja == "[ja]わたしは" + unicodedata.normalize("NFKD", "とうきょう") + "へいきます."
    ja = mtl_estimators["ja"].preprocessed("カタカナの母は部屋")
    assert ja.startswith("[ja]カタカナ") and "[SPACE]はは" in ja and ja.endswith("[SPACE]へや.")
    # Chinese with a Cangjie code is spelled with [cj_*] tokens (table of the tiny checkpoint)
    assert mtl_estimators["zh"].preprocessed("你好") == "[zh][cj_o][cj_n][cj_f][cj_.][cj_v][cj_n][cj_d][cj_.]."
    # lower-case and NFKD for everyone; spaces become [SPACE]
    assert mtl_estimators["fr"].preprocessed("Été là") == "[fr]e\u0301te\u0301[SPACE]la\u0300."
    assert mtl_estimators["en"].count("") == mtl_estimators["en"].count(
        "You need to add some text for me to talk.")


def test_cangjie_index_suffix_and_a_partly_readable_table(tmp_path, mtl_dir, empty_pkuseg_home):
    """Characters sharing a code get their index after it; a character's last code wins; an
    unreadable entry stops the table there (upstream's try around its loop)."""
    folder = tmp_path / "mtl"
    folder.mkdir()
    shutil.copy(mtl_dir / cbm.TOKENIZER_FILE, folder)
    entries = ["日\ta", "曰\ta", "日\ta", "月\tb", "肉\tb", "月\tob", "冃\tb", "口\tr\textra",
               "a\tq", "no tab here", "山\tu"]
    (folder / cbm.CANGJIE_FILE).write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    table = cbm.CangjieTable(entries)
    assert [table.encode(c) for c in "日曰月肉冃口山"] == ["a", "a1", "ob", "b1", "b2", "r", None]
    assert cbm.cangjie_spelling("肉xa", table) == "[cj_b][cj_1][cj_.]xa"  # only Lo characters

    upstream, est = _mtl_pair(folder, empty_pkuseg_home)
    assert est.cangjie_path == folder / cbm.CANGJIE_FILE
    for text in ["日曰月肉冃口山", "今天日月，肉口山！", "曰 日 a"]:
        assert est.token_ids(text) == upstream.encode(mtl_tts.punc_norm(text), language_id="zh")
        assert est.count(text) == upstream_mtl_count(upstream, text, "zh")


def test_without_a_cangjie_table_chinese_counts_as_upstream(
        tmp_path, mtl_dir, empty_pkuseg_home, mtl_estimators, caplog):
    folder = tmp_path / "mtl"
    folder.mkdir()
    shutil.copy(mtl_dir / cbm.TOKENIZER_FILE, folder)
    with caplog.at_level(logging.WARNING):
        upstream, est = _mtl_pair(folder, empty_pkuseg_home)  # upstream's file is missing too
    assert est.cangjie_path is None
    assert any(cbm.CANGJIE_FILE in r.getMessage() for r in caplog.records)
    for text in SENTENCES["zh"]:
        assert est.token_ids(text) == upstream.encode(mtl_tts.punc_norm(text), language_id="zh")
    # the table changes the count (so it was really not used)
    assert est.count("你好") != mtl_estimators["zh"].count("你好")


def test_cangjie_table_in_a_hub_cache_inside_the_folder(tmp_path, mtl_dir):
    """Where upstream's ``hf_hub_download(cache_dir=folder)`` keeps the table."""
    snap = tmp_path / "models--ResembleAI--chatterbox" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    shutil.copy(mtl_dir / cbm.CANGJIE_FILE, snap)
    assert cbm.cangjie_table_path(tmp_path) == snap / cbm.CANGJIE_FILE
    shutil.copy(mtl_dir / cbm.CANGJIE_FILE, tmp_path)
    assert cbm.cangjie_table_path(tmp_path) == tmp_path / cbm.CANGJIE_FILE  # beside it first


class _FakeDicta:
    """dicta-onnx's ``Dicta`` stand-in: a qamats after every Hebrew letter."""

    def add_diacritics(self, text: str) -> str:
        return "".join(c + "\u05b8" if "\u05d0" <= c <= "\u05ea" else c for c in text)


class _FakeStresser:
    """russian-text-stresser's stand-in: an acute accent after each word's first vowel."""

    def stress_text(self, text: str) -> str:
        def stressed(word: str) -> str:
            for i, c in enumerate(word):
                if c in "аеёиоуыэюя":
                    return word[: i + 1] + "\u0301" + word[i + 1:]
            return word
        return " ".join(stressed(w) for w in text.split(" "))


class _Failing:
    def add_diacritics(self, text: str) -> str:
        raise RuntimeError("model file missing")

    stress_text = add_diacritics


@pytest.mark.parametrize("works", [True, False])
def test_hebrew_and_russian_libraries_are_used_as_upstream_uses_them(
        works, monkeypatch, upstream_mtl, mtl_estimators):
    """With dicta-onnx and russian-text-stresser importable (stand-ins here), both counts
    follow them; when they fail, both keep the text."""
    import types

    dicta = types.ModuleType("dicta_onnx")
    dicta.Dicta = _FakeDicta if works else _Failing
    stresser_package = types.ModuleType("russian_text_stresser")
    stresser_module = types.ModuleType("russian_text_stresser.text_stresser")
    stresser_module.RussianTextStresser = _FakeStresser if works else _Failing
    monkeypatch.setitem(sys.modules, "dicta_onnx", dicta)
    monkeypatch.setitem(sys.modules, "russian_text_stresser", stresser_package)
    monkeypatch.setitem(sys.modules, "russian_text_stresser.text_stresser", stresser_module)
    # both sides build their library helper afresh
    monkeypatch.setattr(upstream_tokenizer, "_dicta", None)
    monkeypatch.setattr(upstream_tokenizer, "_russian_stresser", None)
    monkeypatch.setattr(cbm, "_DICTA", cbm._LazyLibrary(
        cbm._build_dicta, "dicta_onnx", "Hebrew", (Exception,)))
    monkeypatch.setattr(cbm, "_STRESSER", cbm._LazyLibrary(
        cbm._build_stresser, "russian_text_stresser", "Russian", (Exception,)))
    for lang in ("he", "ru"):
        est = mtl_estimators[lang]
        for text in SENTENCES[lang]:
            ids = upstream_mtl.encode(mtl_tts.punc_norm(text), language_id=lang)
            assert est.token_ids(text) == ids, text
        # the library's marks are counted (and nothing else changes when it fails)
        first = SENTENCES[lang][0]
        bare = f"[{lang}]" + cbm.lower_nfkd(mtl_tts.punc_norm(first)).replace(" ", "[SPACE]")
        plain = len(upstream_mtl.tokenizer.encode(bare).ids) + 2
        assert (est.count(first) > plain) if works else (est.count(first) == plain)


class _TwoCharacterWords:
    """A stand-in for pkuseg's model: whitespace-separated runs cut into two-character words
    (``cut`` strips and splits on whitespace first, as pkuseg's does)."""

    def __init__(self, *_args, **_kwargs) -> None:
        pass

    def cut(self, text: str) -> list[str]:
        return [run[i:i + 2] for run in text.strip().split() for i in range(0, len(run), 2)]


def test_chinese_segmentation_counts_as_upstream(tmp_path, mtl_dir, mtl_estimators):
    home = tmp_path / "pkuseg"
    home.mkdir()
    (home / f"{cbm.PKUSEG_MODEL}.zip").write_bytes(b"")  # the model is on disk: no download
    upstream, est = _mtl_pair(mtl_dir, home, _TwoCharacterWords)
    assert est.chinese_segmentation and isinstance(upstream.cangjie_converter.segmenter,
                                                   _TwoCharacterWords)
    for text in SENTENCES["zh"] + ["你好 世界", "山\u00b4口"]:
        assert est.token_ids(text) == upstream.encode(mtl_tts.punc_norm(text), language_id="zh"), text
    # "你好 世界 。": one [SPACE] per word break
    assert not mtl_estimators["zh"].chinese_segmentation
    assert est.count("你好世界。") == mtl_estimators["zh"].count("你好世界。") + 2

    @given(script_text("zh"))
    @settings(max_examples=60, deadline=None)
    def check(text):
        assert est.count(text) == upstream_mtl_count(upstream, text, "zh")

    check()


def test_the_chinese_segmenter_loads_on_first_use_only(tmp_path, mtl_dir):
    """Building the estimator stays cheap (``seqopt config validate`` builds it); pkuseg's
    model loads once, at the first Chinese count."""
    home = tmp_path / "pkuseg"
    home.mkdir()
    (home / f"{cbm.PKUSEG_MODEL}.zip").write_bytes(b"")
    built = []

    class Recording(_TwoCharacterWords):
        def __init__(self, *args, **kwargs) -> None:
            built.append(args)

    with _pkuseg(home, Recording):
        est = cbm.ChatterboxMultilingualEstimator(
            cbm.ChatterboxMultilingualOptions(tokenizer=str(mtl_dir)), "zh")
        assert not built
        est.count("你好")
        est.count("世界")
    assert built == [()]


def test_no_pkuseg_model_on_disk_means_no_download_and_a_warning(empty_pkuseg_home, caplog):
    import spacy_pkuseg
    from spacy_pkuseg.config import config

    called = []
    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING):
        mp.setattr(config, "pkuseg_home", str(empty_pkuseg_home))
        mp.setattr(spacy_pkuseg, "pkuseg", lambda *a, **k: called.append(a))
        assert cbm.load_chinese_segmenter() is None
    assert not called and not list(empty_pkuseg_home.iterdir())
    assert any("downloads it" in r.getMessage() for r in caplog.records)


def test_mtl_estimator_through_its_registry_record(mtl_dir, empty_pkuseg_home):
    (spec,) = cbm.seqopt_token_estimators()
    assert spec.name == "chatterbox-multilingual" and spec.per_language
    host = make_host(cbm, builtins=False)
    with _pkuseg(empty_pkuseg_home):
        est = host.create("estimator", "chatterbox-multilingual", {"tokenizer": str(mtl_dir)},
                          language="el")
    assert est.language == "el"
    assert est.count("Καλημέρα") == cbm.ChatterboxMultilingualEstimator(
        cbm.ChatterboxMultilingualOptions(tokenizer=str(mtl_dir)), "el").count("Καλημέρα")
    with pytest.raises(Exception, match="tokenizr: unknown key"):
        host.create("estimator", "chatterbox-multilingual", {"tokenizr": "x"}, language="el")


# ---------------------------------------------------------------------------------------------
# (b) Turbo counts equal upstream's
# ---------------------------------------------------------------------------------------------

TURBO_TEXT = st.lists(
    st.sampled_from(list("abcXYZ .,;:!?-'\"\n\t0129") + [
        "...", "\u2026", "\u2014", "\u2013", "\u201c", "\u201d", "\u2018", "\u2019", " - ",
        "[laugh]", "[sigh]", "[clear throat]", "[notatag]", "<|endoftext|>", "\u00e9", "ça",
        "\u4f60\u597d", "\U0001f600", "  ", "'s", "'ll", "\u00a0", "Hello", " world"]),
    max_size=40,
).map("".join)


@given(TURBO_TEXT)
@settings(max_examples=300, deadline=None)
def test_turbo_punc_norm_matches_chatterbox(text):
    assert cbt.punc_norm(text) == tts_turbo.punc_norm(text)


@given(TURBO_TEXT)
@settings(max_examples=200, deadline=None)
def test_turbo_counts_as_upstream(upstream_turbo, turbo_dir, text):
    est = _turbo(turbo_dir)
    ids = upstream_turbo_ids(upstream_turbo, text)
    assert est.token_ids(text) == ids
    assert est.count(text) == len(ids)


def _turbo(folder: Path) -> cbt.ChatterboxTurboEstimator:
    return cbt.ChatterboxTurboEstimator(cbt.ChatterboxTurboOptions(tokenizer=str(folder)))


def test_turbo_adds_no_start_stop_tokens_and_truncates_as_upstream(upstream_turbo, turbo_dir):
    est = _turbo(turbo_dir)
    # "Hi." in the byte-level structural vocabulary: three bytes, nothing around them
    assert est.count("Hi.") == 3 == len(upstream_turbo_ids(upstream_turbo, "Hi."))
    assert est.count("Hi [laugh] there") == len(upstream_turbo_ids(upstream_turbo, "Hi [laugh] there"))
    long_text = "word " * 600
    assert est.max_length == 1024
    assert est.token_ids(long_text) == upstream_turbo_ids(upstream_turbo, long_text)
    assert est.count(long_text) == 1024


def test_turbo_legacy_added_tokens_and_bos_eos_as_transformers(tmp_path, turbo_dir):
    """A folder without ``added_tokens_decoder`` (added_tokens.json only) that asks for bos and
    eos, with a small model_max_length: still what AutoTokenizer gives."""
    folder = tmp_path / "turbo"
    shutil.copytree(turbo_dir, folder)
    config = json.loads((folder / cbt.CONFIG_FILE).read_text(encoding="utf-8"))
    del config["added_tokens_decoder"]
    config.update(add_bos_token=True, add_eos_token=True, model_max_length=16,
                  additional_special_tokens=["<|extra|>"])
    (folder / cbt.CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    upstream = _auto_tokenizer(folder)
    est = _turbo(folder)
    for text in ["Hi [laugh] there", "[sigh]", "a much longer text than sixteen tokens [gasp]", "",
                 "one <|extra|> two"]:
        assert est.token_ids(text) == upstream_turbo_ids(upstream, text), text
    assert est.count("[sigh]") == 1 + 2 + 1  # bos, [sigh], ".", eos
    assert est.count("<|extra|>") == 1 + 2 + 1


# ---------------------------------------------------------------------------------------------
# (c) Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["xx", "ja-JP", "english", ""])
def test_unknown_language_lists_the_23(language, mtl_dir):
    with pytest.raises(OptionValueError) as err:
        cbm.ChatterboxMultilingualEstimator(
            cbm.ChatterboxMultilingualOptions(tokenizer=str(mtl_dir)), language)
    assert err.value.key == "language"
    message = str(err.value)
    assert repr(language) in message and "23 languages" in message
    for code, name in mtl_tts.SUPPORTED_LANGUAGES.items():
        assert f"{code} ({name})" in message
    # through the registry record: a StrategyBuildError naming the option
    (spec,) = cbm.seqopt_token_estimators()
    with pytest.raises(StrategyBuildError) as built:
        spec.create({"tokenizer": str(mtl_dir)}, language or "zz")
    assert built.value.key == "language" and "estimator.options.language" in str(built.value)


def test_language_is_checked_before_the_tokenizer(tmp_path, monkeypatch):
    monkeypatch.delenv(cbm.TOKENIZER_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(OptionValueError):
        cbm.ChatterboxMultilingualEstimator(None, "xx")


def test_mtl_missing_tokenizer_names_where_it_looked(tmp_path, monkeypatch, mtl_dir):
    monkeypatch.delenv(cbm.TOKENIZER_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(TokenizerNotFoundError) as err:
        cbm.ChatterboxMultilingualEstimator(None, "fr")
    msg = str(err.value)
    assert "option 'tokenizer' (not set)" in msg and "$SEQOPT_MTL_TOKENIZER (not set)" in msg
    assert "Hugging Face cache of ResembleAI/chatterbox" in msg and str(tmp_path / "hub") in msg
    assert cbm.TOKENIZER_FILE in msg and "--tokenizer PATH" in msg and "overrides=" in msg
    assert '[estimator] name = "chatterbox-multilingual"' in msg

    # the Hugging Face cache layout, then the environment variable, then the option
    snap = tmp_path / "hub" / "models--ResembleAI--chatterbox" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    shutil.copy(mtl_dir / cbm.TOKENIZER_FILE, snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc123")
    assert cbm.resolve_tokenizer_path() == snap / cbm.TOKENIZER_FILE
    monkeypatch.setenv(cbm.TOKENIZER_ENV, str(mtl_dir))
    assert cbm.resolve_tokenizer_path() == mtl_dir / cbm.TOKENIZER_FILE
    assert cbm.resolve_tokenizer_path(snap / cbm.TOKENIZER_FILE) == snap / cbm.TOKENIZER_FILE


def test_mtl_wrong_folders_and_files_say_what_they_look_like(tmp_path, turbo_dir, tokenizer_path, mtl_dir):
    english = tmp_path / "english"
    english.mkdir()
    shutil.copy(tokenizer_path, english / "tokenizer.json")
    with pytest.raises(TokenizerNotFoundError, match="English Chatterbox checkpoint"):
        cbm.resolve_tokenizer_path(english)
    with pytest.raises(TokenizerNotFoundError, match="Turbo checkpoint"):
        cbm.resolve_tokenizer_path(turbo_dir)
    with pytest.raises(TokenizerNotFoundError, match=r"\$SEQOPT_MTL_TOKENIZER points to"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(cbm.TOKENIZER_ENV, str(tmp_path / "nowhere"))
            cbm.resolve_tokenizer_path()
    # the English tokenizer.json given as the file: it has [fr], but not every language's token
    with pytest.raises(TokenizerNotFoundError, match=r"has no \[ar\], .*\[zh\] tokens: it is not"):
        cbm.ChatterboxMultilingualEstimator(
            cbm.ChatterboxMultilingualOptions(tokenizer=str(english / "tokenizer.json")), "fr")
    junk = tmp_path / "junk.json"
    junk.write_text("{not a tokenizer")
    with pytest.raises(TokenizerNotFoundError, match="not a valid tokenizer file"):
        cbm.ChatterboxMultilingualEstimator(cbm.ChatterboxMultilingualOptions(tokenizer=str(junk)), "fr")


def test_turbo_missing_tokenizer_names_where_it_looked(tmp_path, monkeypatch, turbo_dir, mtl_dir):
    monkeypatch.delenv(cbt.TOKENIZER_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(TokenizerNotFoundError) as err:
        cbt.ChatterboxTurboEstimator()
    msg = str(err.value)
    assert "option 'tokenizer' (not set)" in msg and "$SEQOPT_TURBO_TOKENIZER (not set)" in msg
    assert "Hugging Face cache of ResembleAI/chatterbox-turbo" in msg and str(tmp_path / "hub") in msg
    assert "vocab.json" in msg and "merges.txt" in msg and "--tokenizer PATH" in msg
    assert '[estimator] name = "chatterbox-turbo"' in msg

    snap = tmp_path / "hub" / "models--ResembleAI--chatterbox-turbo" / "snapshots" / "def456"
    shutil.copytree(turbo_dir, snap)
    assert cbt.resolve_tokenizer_folder() == snap
    monkeypatch.setenv(cbt.TOKENIZER_ENV, str(turbo_dir))
    assert cbt.resolve_tokenizer_folder() == turbo_dir
    assert cbt.resolve_tokenizer_folder(snap / "vocab.json") == snap  # a file stands for its folder

    with pytest.raises(TokenizerNotFoundError, match="no vocab.json and no merges.txt.*Multilingual"):
        cbt.resolve_tokenizer_folder(mtl_dir)
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(turbo_dir / "vocab.json", half)
    with pytest.raises(TokenizerNotFoundError, match=r"has no merges\.txt\."):
        cbt.resolve_tokenizer_folder(half)


def test_turbo_registry_record(turbo_dir):
    (spec,) = cbt.seqopt_token_estimators()
    assert spec.name == "chatterbox-turbo" and not spec.per_language
    est = make_host(cbt, builtins=False).create("estimator", "chatterbox-turbo",
                                                {"tokenizer": str(turbo_dir)})
    assert est.count("Hi.") == 3


# ---------------------------------------------------------------------------------------------
# (d) The text path imports neither torch nor chatterbox
# ---------------------------------------------------------------------------------------------


def test_estimators_import_neither_torch_nor_chatterbox(mtl_dir, turbo_dir, empty_pkuseg_home):
    code = (
        "import json, sys\n"
        "from spacy_pkuseg.config import config; config.pkuseg_home = sys.argv[3]\n"
        "from seqopt_plugins.estimators import chatterbox_multilingual as m, chatterbox_turbo as t\n"
        "m.seqopt_token_estimators(); t.seqopt_token_estimators()\n"
        "o = m.ChatterboxMultilingualOptions(tokenizer=sys.argv[1])\n"
        "counts = {l: m.ChatterboxMultilingualEstimator(o, l).count('Hello, 你好 私は東京 안녕 שלום.') "
        "for l in m.LANGUAGES}\n"
        "counts['turbo'] = t.ChatterboxTurboEstimator(t.ChatterboxTurboOptions(tokenizer=sys.argv[2]))"
        ".count('Hi [laugh] there')\n"
        "print(json.dumps([counts, sorted(n for n in sys.modules "
        "if n.split('.')[0] in ('torch', 'transformers', 'chatterbox'))]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(mtl_dir), str(turbo_dir),
                           str(empty_pkuseg_home)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    counts, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert not heavy, f"the estimators imported {heavy}"
    assert len(counts) == 24 and all(n > 2 for n in counts.values())
