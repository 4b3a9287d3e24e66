"""Shared fixtures. The released Chatterbox tokenizer comes from $SEQOPT_TOKENIZER,
else from ../shared/data beside the checkout (see README)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from seqopt_core import Span

pytest_plugins = ["seqopt_core.testing"]

REPO = Path(__file__).resolve().parents[1]
SHARED_TOKENIZER = REPO.parent / "shared" / "data" / "chatterbox_en_tokenizer.json"

if not os.environ.get("SEQOPT_TOKENIZER") and SHARED_TOKENIZER.is_file():
    # CLI subprocesses and the default profile find the tokenizer the same way users do.
    os.environ["SEQOPT_TOKENIZER"] = str(SHARED_TOKENIZER)

if not os.environ.get("SEQOPT_CACHE_DIR"):
    # Measured cost models (the deadline chunk policy) go to a cache of this test run's
    # own, never the user's; CLI subprocesses share it.
    os.environ["SEQOPT_CACHE_DIR"] = tempfile.mkdtemp(prefix="seqopt-test-cache-")


@pytest.fixture(scope="session")
def tokenizer_path() -> Path:
    path = Path(os.environ.get("SEQOPT_TOKENIZER", SHARED_TOKENIZER))
    if not path.is_file():
        pytest.fail(
            f"Chatterbox tokenizer not found at {path}: set SEQOPT_TOKENIZER to the released "
            "tokenizer.json (../shared/data/chatterbox_en_tokenizer.json in this workspace)"
        )
    return path


@pytest.fixture(scope="session")
def exact_estimator(tokenizer_path):
    from seqopt_plugins.estimators.chatterbox import ChatterboxEstimator, ChatterboxOptions

    return ChatterboxEstimator(ChatterboxOptions(tokenizer=str(tokenizer_path)))


class PunctuationSplitter:
    """A deliberately simple splitter for planner tests: ends at . ! ? followed by space."""

    _RE = re.compile(r"\S.*?(?:[.!?]+(?=\s)|$)", re.S)

    def __init__(self, options=None) -> None:
        pass

    def split(self, text: str) -> list[Span]:
        spans = []
        for m in self._RE.finditer(text):
            end = m.end()
            while end > m.start() and text[end - 1].isspace():
                end -= 1
            spans.append(Span(m.start(), end))
        return spans


@pytest.fixture
def simple_splitter() -> PunctuationSplitter:
    return PunctuationSplitter()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tokenizer_path):
    """A tiny random-weight Chatterbox checkpoint in the released layout (noise, not speech)."""
    from seqopt_plugins.chatterbox.checkpoint import write_random_checkpoint

    folder = tmp_path_factory.mktemp("tiny_checkpoint")
    write_random_checkpoint(folder, scale="tiny", seed=0, tokenizer=tokenizer_path)
    return folder


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one thread, and a second busy process on a 2-core
    machine makes two-thread runs crawl; restore the setting after the test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_mtl_checkpoint(tmp_path_factory):
    """A tiny random-weight Chatterbox Multilingual checkpoint in the released layout (with
    seqopt's structural tokenizer files; noise, not speech)."""
    from seqopt_plugins.chatterbox.checkpoint import write_random_checkpoint

    folder = tmp_path_factory.mktemp("tiny_mtl_checkpoint")
    write_random_checkpoint(folder, model="multilingual", scale="tiny", seed=0)
    return folder


@pytest.fixture(scope="session")
def tiny_turbo_checkpoint(tmp_path_factory):
    """A tiny random-weight Chatterbox Turbo checkpoint in the released layout (with seqopt's
    structural GPT-2 tokenizer files; noise, not speech)."""
    from seqopt_plugins.chatterbox.checkpoint import write_random_checkpoint

    folder = tmp_path_factory.mktemp("tiny_turbo_checkpoint")
    write_random_checkpoint(folder, model="turbo", scale="tiny", seed=0)
    return folder
