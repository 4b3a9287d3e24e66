"""The examples in module docstrings run as written."""

from __future__ import annotations

import doctest

import pytest

import seqopt_core.api
import seqopt_core.compare
import seqopt_core.costs
import seqopt_core.harness.stats
import seqopt_core.textfile


@pytest.mark.parametrize("module", [seqopt_core.api, seqopt_core.compare, seqopt_core.costs,
                                    seqopt_core.harness.stats, seqopt_core.textfile], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
