"""A/B comparison of pipeline configurations: the harness behind ``seqopt compare``.

Which splitter, chunk policy and attention backend is fastest for *your* texts
on *your* machine, and what does it cost? The harness loads the model once,
runs every configuration on every text in the same process, interleaved
(A B A B ...) after a warm-up, and reports medians, spread and ratios, with
JSON, a Markdown report and PNG plots::

    from seqopt_core.harness import ComparisonRunner, contenders_from, length_matrix, write_report

    runner = ComparisonRunner(contenders_from(["baseline", "rtx4090"]), checkpoint="ck")
    texts = length_matrix([32, 128], runner.exact)
    result = runner.run(texts, repeats=3, warmup="A short warm-up text.")
    write_report(result, "compare-out")

Modules: :mod:`.texts` (the texts, pure), :mod:`.stats` (medians, paired
ratios), :mod:`.seams` (join discontinuities, numpy), :mod:`.memory` (peak
memory without torch), :mod:`.runner` (runs pipelines; imports the engine when
a comparison starts), :mod:`.report` and :mod:`.plots` (the files).
"""

from __future__ import annotations

from .report import ratios, summaries, write_report
from .runner import (
    Comparison,
    ComparisonRunner,
    Contender,
    ProgressSink,
    RunSample,
    compare_pipelines,
    contenders_from,
    interleaved,
)
from .stats import paired_ratio, summarize
from .texts import (
    CONTENT_CLASSES,
    DEFAULT_CLASS_TOKENS,
    DEFAULT_LENGTHS,
    ComparisonText,
    class_texts,
    file_texts,
    length_matrix,
    warmup_text,
)

__all__ = [
    "CONTENT_CLASSES", "DEFAULT_CLASS_TOKENS", "DEFAULT_LENGTHS", "Comparison", "ComparisonRunner",
    "ComparisonText", "Contender", "ProgressSink", "RunSample", "class_texts", "compare_pipelines",
    "contenders_from", "file_texts", "interleaved", "length_matrix", "paired_ratio", "ratios",
    "summaries", "summarize", "warmup_text", "write_report",
]
