from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqopt_core import TokenizerNotFoundError
from seqopt_plugins.estimators import chatterbox as cbx
from seqopt_plugins.estimators.ratio import RatioEstimator, RatioOptions

# Text the way users write it, with the characters punc_norm rewrites.
TEXTISH = st.lists(
    st.sampled_from(list("abcXYZ .,;:!?-'\"\n\t") + ["...", "\u2026", "\u2014", "\u2013",
                                                     "\u201c", "\u201d", "\u2018", "\u2019",
                                                     " - ", "[laughter]", "[sigh]", "\u00e9", "1"]),
    max_size=40,
).map("".join)


@pytest.fixture(scope="module")
def upstream():
    """chatterbox-tts 0.1.7's own punc_norm and EnTokenizer (the chatterbox extra)."""
    from chatterbox.models.tokenizers import EnTokenizer
    from chatterbox.tts import punc_norm

    return punc_norm, EnTokenizer


def test_ratio_estimator():
    est = RatioEstimator()
    assert est.count("a" * 16) == 10 + 2
    assert est.count("a   b\n\nc") == math.ceil(5 / 1.6) + 2  # whitespace runs count once
    custom = RatioEstimator(RatioOptions(chars_per_token=2.0, overhead_tokens=0))
    assert custom.count("abcd") == 2


@given(TEXTISH)
@settings(max_examples=300, deadline=None)
def test_punc_norm_matches_chatterbox(upstream, text):
    upstream_punc_norm, _ = upstream
    assert cbx.punc_norm(text) == upstream_punc_norm(text)


@given(TEXTISH.filter(lambda s: s.strip()))
@settings(max_examples=200, deadline=None)
def test_exact_count_matches_what_t3_receives(upstream, exact_estimator, tokenizer_path, text):
    punc_norm, EnTokenizer = upstream
    tok = _en_tokenizer(EnTokenizer, tokenizer_path)
    # ChatterboxTTS.generate: punc_norm -> EnTokenizer -> pad [START] ... [STOP]
    assert exact_estimator.count(text) == len(tok.encode(punc_norm(text))) + 2
    assert exact_estimator.token_ids(text) == tok.encode(punc_norm(text))


_TOKENIZERS = {}


def _en_tokenizer(cls, path):
    if path not in _TOKENIZERS:
        _TOKENIZERS[path] = cls(str(path))
    return _TOKENIZERS[path]


def test_event_tags_are_one_token(exact_estimator):
    base = exact_estimator.token_ids("Well, that is funny.")
    tagged = exact_estimator.token_ids("Well, that is funny. [laughter]")
    # [SPACE], the tag as one id, then the "." punc_norm adds at the end
    assert tagged[: len(base)] == base and len(tagged) == len(base) + 3
    assert exact_estimator.token_ids("[laughter]")[0] == tagged[len(base) + 1]
    assert exact_estimator.count("[clear_throat]") == exact_estimator.count("[sigh]")


def test_tokenizer_resolution_order(tmp_path, monkeypatch, tokenizer_path):
    monkeypatch.delenv(cbx.TOKENIZER_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(TokenizerNotFoundError) as err:
        cbx.resolve_tokenizer_path()
    msg = str(err.value)
    assert "SEQOPT_TOKENIZER" in msg and "--tokenizer" in msg and "--estimator ratio" in msg

    # Hugging Face cache layout: refs/main names the snapshot
    snap = tmp_path / "hub" / "models--ResembleAI--chatterbox" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "tokenizer.json").write_bytes(tokenizer_path.read_bytes())
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc123")
    assert cbx.resolve_tokenizer_path() == snap / "tokenizer.json"

    monkeypatch.setenv(cbx.TOKENIZER_ENV, str(tokenizer_path))
    assert cbx.resolve_tokenizer_path() == tokenizer_path
    # a checkpoint folder holding tokenizer.json works as well
    assert cbx.resolve_tokenizer_path(snap) == snap / "tokenizer.json"


def test_bad_tokenizer_paths(tmp_path):
    with pytest.raises(TokenizerNotFoundError, match="not a file"):
        cbx.resolve_tokenizer_path(tmp_path / "missing.json")
    junk = tmp_path / "junk.json"
    junk.write_text("{not a tokenizer")
    with pytest.raises(TokenizerNotFoundError, match="not a valid tokenizer.json"):
        cbx.ChatterboxEstimator(cbx.ChatterboxOptions(tokenizer=str(junk)))


def test_text_path_does_not_import_torch(tokenizer_path):
    import subprocess
    import sys

    code = ("import sys; from seqopt_core import build_planner; "
            "p = build_planner(); p.plan('Hello there. ' * 50); "
            "from seqopt_core.cli import main; "
            "bad = [m for m in ('torch', 'transformers', 'chatterbox') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
