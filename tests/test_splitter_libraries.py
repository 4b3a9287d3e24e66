"""The library-backed sentence splitters: nltk (Punkt), spacy and pysbd.

Each must honour the splitter contract (``check_sentence_spans``) for any input,
work offline, and be discovered through its entry point.
"""

from __future__ import annotations

import functools
import socket
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqopt_core import PluginHost, SentenceSplitterSpec, Span
from seqopt_core.text import check_sentence_spans
from seqopt_plugins.splitters._spans import align_pieces, blocks, repair_spans

pytest.importorskip("nltk")
pytest.importorskip("punkt")
pytest.importorskip("spacy")
pytest.importorskip("pysbd")

from seqopt_plugins.splitters import nltk as nltk_plugin  # noqa: E402
from seqopt_plugins.splitters import pysbd as pysbd_plugin  # noqa: E402
from seqopt_plugins.splitters import spacy as spacy_plugin  # noqa: E402

NAMES = ("nltk", "spacy", "pysbd")


@functools.lru_cache(maxsize=None)
def splitter(name: str):
    if name == "nltk":
        return nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions())
    if name == "spacy":
        return spacy_plugin.SpacySplitter(spacy_plugin.SpacyOptions())
    return pysbd_plugin.PysbdSplitter(pysbd_plugin.PysbdOptions())


def sentences(name: str, text: str) -> list[str]:
    spans = splitter(name).split(text)
    check_sentence_spans(text, spans, name)
    return [s.text(text) for s in spans]


# --- the contract on edge inputs ------------------------------------------------

EDGE_INPUTS = [
    "x",
    ".",
    "?",
    "!!!?",
    "...",
    "…",
    ".,;:!?-–—",
    "“Hi…” she said. ‘Fine’… “Really?!” ”",
    "He said “Hi…” and left. “Wait!” she cried.",
    "\t a \n b. \n\n c.\t",
    "Line one\nline two.\r\nLine three?\rFour!",
    "Hello.\u2028World.\u2029Again.\x85Yes.",
    "\u00a0Hi.\u3000Yes.\u00a0",
    "a \x1c b. C\x1d d.",
    "Ca\u0301fe\u0301. Nai\u0308ve. 😀 Emoji! 👍🏽 ok.",
    "Dr. Who? Yes. I.e. no. U.S.A. is big. e.g. this.",
    "a∯b. Go ȸ now. What&ᓴ&no. ♨ Ok☉. ⎋x. &ᓰ& &ᓱ&",
    "1. one\n2. two\n3. three",
    "(a) first. [b] second. {c} third.",
    "a.b.c.d.e.f.g",
    "End.Next.Word.",
    "\"\"\"''' ''' \"\"\"",
    "x" * 50 + ". " + "y" * 50,
    "[laughter] Oh. [clear_throat] Well.",
    "\x00 a. \x07 b.",
    "ᓴ, \x1c32.\n x. \x1c1. y",  # crashed pySBD 0.3.4 (int('\x1c32')) before normalising
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", EDGE_INPUTS)
def test_contract_on_edge_inputs(name: str, text: str) -> None:
    got = sentences(name, text)
    assert got, "non-blank text must give at least one sentence"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("text", ["", " ", "\n\n", "\t \r\n \u3000"])
def test_blank_text_gives_no_sentences(name: str, text: str) -> None:
    assert sentences(name, text) == []


@pytest.mark.parametrize("name", NAMES)
def test_100k_characters_without_spaces(name: str) -> None:
    for text in ("a" * 100_000, "ab." * 33_333):
        got = sentences(name, text)
        assert "".join(got) == text  # no whitespace, so the pieces rebuild the text


@pytest.mark.parametrize("name", NAMES)
def test_long_multi_paragraph_text(name: str) -> None:
    para = "The cat sat on the mat. It was warm! Was it happy? Nobody knows.\n"
    text = "\n".join([para * 20] * 30)
    got = sentences(name, text)
    assert len(got) >= 4 * 20 * 30 * 0.9


# --- properties -------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "a", "Word", "the", " ", "  ", "\n", "\n\n", "\t", "\r", ".", "!", "?", "...",
        "…", ",", ";", ":", "-", "—", "\"", "'", "“", "”", "‘", "’", "(", ")", "[", "]",
        "«", "»", "Mr.", "Dr.", "U.S.", "e.g.", "i.e.", "1.", "2", "3.5", "He", "The",
        "é", "\u0301", "😀", "\u00a0", "\u3000", "\u2028", "\x1c", "\x85", "∯", "ȸ",
        "&ᓴ&", "&ᓷ&", "♨", "☉", "⎋", "。", "！", "？", "[laughter]",
    ]
)
TEXTS = st.one_of(
    st.lists(_PIECES, max_size=40).map("".join),
    st.text(max_size=60),
)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_contract_property(name: str, text: str) -> None:
    check_sentence_spans(text, splitter(name).split(text), name)


@settings(max_examples=300, deadline=None)
@given(
    text=TEXTS,
    raw=st.lists(st.tuples(st.integers(-5, 90), st.integers(-5, 90)), max_size=12),
)
def test_repair_spans_property(text: str, raw: list[tuple[int, int]]) -> None:
    check_sentence_spans(text, repair_spans(text, raw), "repair_spans")


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, pieces=st.lists(TEXTS, max_size=8))
def test_align_pieces_property(text: str, pieces: list[str]) -> None:
    raw = align_pieces(text, pieces)
    assert all(0 <= s < e <= len(text) for s, e in raw)
    assert all(a[1] <= b[0] for a, b in zip(raw, raw[1:]))
    check_sentence_spans(text, repair_spans(text, raw), "align_pieces")


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, max_chars=st.integers(2, 30))
def test_blocks_property(text: str, max_chars: int) -> None:
    bl = list(blocks(text, max_chars))
    assert all(len(b) <= max_chars for b in bl)
    check_sentence_spans(text, bl, "blocks")


# --- the repair helper ------------------------------------------------------------


def test_repair_spans_fixes_what_libraries_get_wrong() -> None:
    text = "  One two. Three four.  Five six.  "
    # untrimmed, overlapping, out of order, out of bounds, and a gap with text
    raw = [(11, 40), (0, 11), (5, 9), (-3, 1)]
    got = [s.text(text) for s in repair_spans(text, raw)]
    assert got == ["One two.", "Three four.  Five six."]
    # text the library left out goes to the previous sentence ...
    assert [s.text("Hi. (x) Bye.") for s in repair_spans("Hi. (x) Bye.", [(0, 3), (8, 12)])] \
        == ["Hi. (x)", "Bye."]
    # ... unless it is glued to the next sentence's first character
    assert [s.text("Hi. “Bye.") for s in repair_spans("Hi. “Bye.", [(0, 3), (5, 9)])] \
        == ["Hi.", "“Bye."]
    # an opening quote left at the end of the previous sentence moves on
    text = "Left. “Wait!” she said."
    assert [s.text(text) for s in repair_spans(text, [(0, 7), (7, 23)])] \
        == ["Left.", "“Wait!” she said."]
    assert repair_spans("  ", [(0, 2)]) == []
    assert repair_spans(" ab ", []) == [Span(1, 3)]


def test_align_pieces_survives_altered_sentences() -> None:
    text = "What&ᓴ&no. Go ȸ now. Fine."
    raw = align_pieces(text, ["What!no.", "Go", "now.", "Fine."])
    got = [s.text(text) for s in repair_spans(text, raw)]
    assert got == ["What&ᓴ&no.", "Go ȸ", "now.", "Fine."]


# --- correctness ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_three_clear_sentences(name: str) -> None:
    assert sentences(name, "Hello there. How are you? Fine!") == [
        "Hello there.", "How are you?", "Fine!",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_blank_line_ends_a_sentence(name: str) -> None:
    assert sentences(name, "Chapter one\n\nIt was dark. It rained.") == [
        "Chapter one", "It was dark.", "It rained.",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_wrapped_lines_do_not_end_sentences(name: str) -> None:
    text = "This sentence is wrapped\nover two lines. The next one\nis too."
    assert sentences(name, text) == [
        "This sentence is wrapped\nover two lines.", "The next one\nis too.",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_common_abbreviations(name: str) -> None:
    assert sentences(name, "Mr. Smith went to Washington. He arrived.") == [
        "Mr. Smith went to Washington.", "He arrived.",
    ]


def test_nltk_uses_trained_english_parameters() -> None:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    text = "Mr. Smith went to Washington. He arrived."
    untrained = [text[s:e] for s, e in PunktSentenceTokenizer().span_tokenize(text)]
    assert untrained == ["Mr.", "Smith went to Washington.", "He arrived."]
    assert sentences("nltk", text) == ["Mr. Smith went to Washington.", "He arrived."]
    params = splitter("nltk")._tokenizer._params
    assert {"mr", "dr", "mrs", "inc", "jan"} <= params.abbrev_types
    assert len(params.ortho_context) > 10_000


def test_nltk_tokenizer_is_cached_and_does_not_grow() -> None:
    a = nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions())
    b = nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions(language="english"))
    assert a._tokenizer is b._tokenizer
    ortho = a._tokenizer._params.ortho_context
    before = len(ortho)
    a.split("Zyxqwv. Blorptastic frumious. Snark. Qwertyuiop asdf.")
    assert len(ortho) == before  # unseen word types are not inserted (NLTK's defaultdict leak)


def test_nltk_unknown_language_lists_choices() -> None:
    with pytest.raises(ValueError, match="english") as err:
        nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions(language="klingon", source="package"))
    assert "german" in str(err.value)
    with pytest.raises(ValueError, match="invalid language"):
        nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions(language="../english"))


def test_nltk_other_bundled_language() -> None:
    s = nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions(language="german", source="package"))
    text = "Das ist z.B. ein Satz. Und noch einer."
    spans = s.split(text)
    check_sentence_spans(text, spans, "nltk")
    assert [sp.text(text) for sp in spans] == ["Das ist z.B. ein Satz.", "Und noch einer."]


def test_nltk_prefers_local_punkt_tab_data(tmp_path, monkeypatch) -> None:
    import nltk.data
    from nltk.tokenize.punkt import save_punkt_params

    params = nltk_plugin._params_from_package("english")
    target = tmp_path / "tokenizers" / "punkt_tab" / "english"
    target.mkdir(parents=True)
    monkeypatch.setattr(nltk_plugin, "_CACHE", {})
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # NLTK only writes under it
    save_punkt_params(params, dir=str(target))
    s = nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions())
    assert s.params_source == "nltk_data"
    text = "Mr. Smith went to Washington. He arrived."
    assert [sp.text(text) for sp in s.split(text)] == [
        "Mr. Smith went to Washington.", "He arrived.",
    ]
    assert nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions(source="package")).params_source \
        == "package"


def test_nltk_data_source_missing_is_a_clear_error(tmp_path, monkeypatch) -> None:
    import nltk.data

    monkeypatch.setattr(nltk_plugin, "_CACHE", {})
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    with pytest.raises(ValueError, match="never downloads"):
        nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions(source="nltk_data"))
    # auto falls back to the package
    assert nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions()).params_source == "package"


def test_spacy_pipeline_choice() -> None:
    s = splitter("spacy")
    if spacy_plugin.default_model() is None:
        assert s.pipeline_name == spacy_plugin.BLANK_PIPELINE
        assert s.component == "sentencizer"
    else:
        assert spacy_plugin.default_model() in s.pipeline_name
    assert s.pipeline_name in s.description
    assert spacy_plugin.SpacySplitter(spacy_plugin.SpacyOptions())._nlp is s._nlp  # cached


def test_spacy_missing_model_says_how_to_install() -> None:
    with pytest.raises(ValueError, match="python -m spacy download en_core_web_zz"):
        spacy_plugin.SpacySplitter(spacy_plugin.SpacyOptions(model="en_core_web_zz"))


def test_spacy_pipeline_from_a_directory_keeps_only_boundary_components(tmp_path) -> None:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(tmp_path / "pipe")
    s = spacy_plugin.SpacySplitter(spacy_plugin.SpacyOptions(model=str(tmp_path / "pipe")))
    assert s.component == "sentencizer"
    assert s._nlp.pipe_names == ["sentencizer"]
    assert sentences_with(s, "One here. Two there.") == ["One here.", "Two there."]


def test_spacy_small_blocks(tmp_path) -> None:
    s = spacy_plugin.SpacySplitter(spacy_plugin.SpacyOptions(max_block_chars=1_000))
    text = "Short sentence number one. " * 200
    got = sentences_with(s, text)
    assert len(got) == 200


def sentences_with(s, text: str) -> list[str]:
    spans = s.split(text)
    check_sentence_spans(text, spans, "custom")
    return [sp.text(text) for sp in spans]


def test_pysbd_options() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="never do"):
        pysbd_plugin.PysbdOptions(clean=True)
    with pytest.raises(ValueError, match="pySBD knows"):
        pysbd_plugin.PysbdSplitter(pysbd_plugin.PysbdOptions(language="xx"))
    lines = pysbd_plugin.PysbdSplitter(pysbd_plugin.PysbdOptions(line_breaks_end_sentences=True))
    assert sentences_with(lines, "first line\nsecond line") == ["first line", "second line"]


def test_pysbd_keeps_sentences_its_own_char_spans_drop() -> None:
    import pysbd

    text = "a∯b. Next one."
    own = pysbd.Segmenter(language="en", clean=False, char_span=True).segment(text)
    assert "".join(s.sent for s in own).strip() == "Next one."  # pySBD 0.3.4 loses "a∯b."
    assert sentences("pysbd", text) == ["a∯b.", "Next one."]


class _Broken:
    def span_tokenize(self, text):
        raise RuntimeError("library bug")

    def __call__(self, text):
        raise RuntimeError("library bug")

    def pipe(self, texts):
        raise RuntimeError("library bug")


@pytest.mark.parametrize("name", NAMES)
def test_library_failure_falls_back_to_plain_rules(name: str, monkeypatch, caplog) -> None:
    s = {
        "nltk": lambda: nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions()),
        "spacy": lambda: spacy_plugin.SpacySplitter(spacy_plugin.SpacyOptions()),
        "pysbd": lambda: pysbd_plugin.PysbdSplitter(pysbd_plugin.PysbdOptions()),
    }[name]()
    if name == "nltk":
        monkeypatch.setattr(s, "_tokenizer", _Broken())
    elif name == "spacy":
        monkeypatch.setattr(s, "_nlp", _Broken())
    else:
        monkeypatch.setattr(s, "_sentences", _Broken())
    text = "One here. Two “there!” Three?\n\nFour"
    with caplog.at_level("WARNING"):
        assert sentences_with(s, text) == ["One here.", "Two “there!”", "Three?", "Four"]
    assert "library bug" in caplog.text


# --- offline ----------------------------------------------------------------------


def test_nothing_touches_the_network(monkeypatch) -> None:
    import nltk
    import spacy.cli

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(nltk, "download", refuse)
    monkeypatch.setattr(nltk.downloader.Downloader, "download", refuse)
    monkeypatch.setattr(spacy.cli, "download", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # build everything afresh, so loading is covered too
    monkeypatch.setattr(nltk_plugin, "_CACHE", {})
    monkeypatch.setattr(spacy_plugin, "_PIPELINES", {})
    monkeypatch.setattr(pysbd_plugin, "_SEGMENTERS", {})
    text = "Dr. Jones arrived at 5 p.m. on Jan. 3. She left. “Why?” he asked."
    for split in (
        nltk_plugin.NltkSplitter(nltk_plugin.NltkOptions()),
        spacy_plugin.SpacySplitter(spacy_plugin.SpacyOptions()),
        pysbd_plugin.PysbdSplitter(pysbd_plugin.PysbdOptions()),
    ):
        check_sentence_spans(text, split.split(text), "offline")


def test_importing_the_plugins_imports_no_library() -> None:
    code = (
        "import sys\n"
        "import seqopt_plugins.splitters.nltk, seqopt_plugins.splitters.spacy, "
        "seqopt_plugins.splitters.pysbd\n"
        "for m in ('nltk', 'punkt', 'spacy', 'pysbd'):\n"
        "    assert m not in sys.modules, m\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --- discovery ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost.discover()


@pytest.mark.parametrize("name", NAMES)
def test_discovered_and_enabled(host: PluginHost, name: str) -> None:
    info = host.strategy("splitter", name)
    assert info.enabled, info.availability
    assert info.provider == f"{name}_splitter"
    made = host.create("splitter", name)
    text = "It works. Really."
    check_sentence_spans(text, made.split(text), name)


def test_specs_name_requirements_and_install() -> None:
    specs = {
        s.name: s
        for mod in (nltk_plugin, spacy_plugin, pysbd_plugin)
        for s in mod.seqopt_sentence_splitters()
    }
    assert specs["nltk"].requires == ("nltk", "punkt")
    assert specs["spacy"].requires == ("spacy",)
    assert specs["pysbd"].requires == ("pysbd",)
    for name, spec in specs.items():
        assert spec.install == f"pip install 'seqopt[{name}]'"
        assert isinstance(spec, SentenceSplitterSpec)


def test_missing_requirement_is_disabled_with_install_command() -> None:
    spec = SentenceSplitterSpec(
        name="ghost",
        factory=lambda options: None,
        description="needs a module that does not exist",
        requires=("no_such_module_xyz",),
        install="pip install no-such-module-xyz",
    )
    avail = spec.availability()
    assert not avail.enabled
    assert "no_such_module_xyz" in (avail.reason or "")
    assert avail.install == "pip install no-such-module-xyz"
