"""The A/B comparison harness (`seqopt compare`): schedule, statistics, texts, seams,
report files, and a real comparison on a tiny random checkpoint (noise, not speech)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from seqopt_core import SeqoptError
from seqopt_core.cli import main
from seqopt_core.errors import ConfigError
from seqopt_core.harness import (
    CONTENT_CLASSES,
    Comparison,
    ComparisonRunner,
    ComparisonText,
    RunSample,
    class_texts,
    contenders_from,
    file_texts,
    interleaved,
    length_matrix,
    paired_ratio,
    ratios,
    summaries,
    summarize,
    write_report,
)
from seqopt_core.harness.runner import token_match
from seqopt_core.harness.seams import edge_level, measure_seams, seam_ratio
from seqopt_core.harness.stats import playback_stalls
from seqopt_core.harness.texts import corpus_text, prefix_with_tokens

# --- schedule and statistics ---------------------------------------------------------


def test_schedule_interleaves_configurations_within_each_round():
    order = interleaved(["short", "long"], ["A", "B", "C"], 2)
    assert order[:6] == [("short", 0, "A"), ("short", 0, "B"), ("short", 0, "C"),
                         ("short", 1, "A"), ("short", 1, "B"), ("short", 1, "C")]
    assert len(order) == 12 and order[6] == ("long", 0, "A")
    with pytest.raises(ValueError, match="at least 1"):
        interleaved(["t"], ["A", "B"], 0)


def test_summary_and_paired_ratio():
    s = summarize([4.0, 1.0, 3.0, 2.0])
    assert (s["n"], s["median"], s["min"], s["max"]) == (4, 2.5, 1.0, 4.0)
    assert s["q1"] == pytest.approx(1.75) and s["q3"] == pytest.approx(3.25)
    # each round's B/A: 1.0/2.0, 3.0/4.0, 9.0/10.0 -> median 0.75 (not the ratio of medians)
    r = paired_ratio([2.0, 4.0, 10.0], [1.0, 3.0, 9.0])
    assert r["median"] == pytest.approx(0.75) and r["n"] == 3
    # rounds where a side is missing or the reference is zero are left out
    assert paired_ratio([None, 0.0, 2.0], [1.0, 1.0, 1.0])["n"] == 1
    assert paired_ratio([None], [1.0]) is None
    with pytest.raises(ValueError):
        summarize([])


def test_playback_stalls_count_the_silences_a_listener_hears():
    # chunks ready ahead of playback: no stall, however late the later ones are produced
    assert playback_stalls([(0.5, 3.0), (3.4, 1.0), (4.5, 1.0)])["stalls"] == 0
    # ready exactly when the previous chunk ends: no stall
    assert playback_stalls([(1.0, 1.0), (2.0, 1.0)])["stall_seconds"] == 0.0
    # two late chunks: gaps of 0.5 s and 2 s, each measured from where playback had got to
    s = playback_stalls([(1.0, 1.0), (2.5, 1.0), (3.0, 0.5), (6.0, 1.0)])
    assert s == {"stalls": 2, "stall_seconds": 2.5, "longest_stall_seconds": 2.0}
    # time to first audio is not a stall
    assert playback_stalls([(30.0, 1.0)])["stalls"] == 0


# --- texts ---------------------------------------------------------------------------


def test_length_matrix_texts_are_as_long_as_a_word_allows(exact_estimator):
    texts = length_matrix((64, 16, 200), exact_estimator)
    assert [t.id for t in texts] == ["len-16", "len-64", "len-200"]
    for t in texts:
        n = int(t.id.split("-")[1])
        assert t.kind == "length" and t.tokens == exact_estimator.count(t.text) <= n
        # one more word of the same running text would go over the length
        rest = texts[-1].text[len(t.text):] if t is not texts[-1] else None
        if rest:
            next_word = rest[: len(rest) - len(rest.lstrip())] + rest.lstrip().split()[0]
            assert exact_estimator.count(t.text + next_word) > n
    # all are prefixes of one running text: longer texts contain the shorter ones
    assert texts[1].text.startswith(texts[0].text) and texts[2].text.startswith(texts[1].text)


def test_class_texts_cover_every_content_class(exact_estimator):
    texts = class_texts(CONTENT_CLASSES, exact_estimator, tokens=40)
    assert [t.id for t in texts] == [f"class-{c}" for c in CONTENT_CLASSES]
    for t, cls in zip(texts, CONTENT_CLASSES):
        assert corpus_text(cls).startswith(t.text) and 30 <= t.tokens <= 40
    with pytest.raises(SeqoptError, match="unknown content class 'legal'.*book"):
        class_texts(["legal"], exact_estimator)


def test_a_length_too_small_for_one_word_is_a_clear_error(exact_estimator):
    with pytest.raises(SeqoptError, match="at least 1 token"):
        prefix_with_tokens("Hello there.", 0, exact_estimator)
    with pytest.raises(SeqoptError, match="first word alone counts more"):
        prefix_with_tokens("Supercalifragilistic words", 3, exact_estimator)


def test_file_texts_read_your_files_and_name_bad_ones(tmp_path, exact_estimator):
    a = tmp_path / "story.txt"
    a.write_text("Once upon a time. The end.", encoding="utf-8")
    sub = tmp_path / "other"
    sub.mkdir()
    b = sub / "story.txt"
    b.write_text("Another story entirely.", encoding="utf-8")
    texts = file_texts([a, b], exact_estimator)
    assert [t.id for t in texts] == ["file-story", "file-story-2"]
    assert texts[0].text == "Once upon a time. The end." and texts[0].kind == "file"
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(SeqoptError, match="empty.txt.*is empty"):
        file_texts([empty], exact_estimator)
    with pytest.raises(SeqoptError, match="does not exist"):
        file_texts([tmp_path / "missing.txt"], exact_estimator)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(SeqoptError, match="not valid UTF-8.*iconv"):
        file_texts([latin], exact_estimator)


# --- seams ---------------------------------------------------------------------------


def test_seam_ratio_tells_a_click_from_a_smooth_join():
    t = np.arange(24_000) / 24_000
    tone = (0.5 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    assert seam_ratio(tone, 12_007) < 1.5
    clicked = tone.copy()
    clicked[12_007:] += 0.4  # a DC jump where two chunks meet
    assert seam_ratio(clicked, 12_007) > 10
    with pytest.raises(ValueError, match="not inside"):
        seam_ratio(tone, 0)


def test_edge_level_and_measure_seams():
    t = np.arange(4_800) / 24_000
    tone = np.sin(2 * np.pi * 200 * t)
    faded = tone * np.hanning(len(tone))  # starts and ends in silence
    assert edge_level(faded, 0, len(faded)) < 0.1
    assert edge_level(np.ones(480), 0, 480) == pytest.approx(1.0)
    audio = np.concatenate([faded, np.zeros(240), tone]).astype(np.float32)
    report = measure_seams(audio, [1_000, 0, len(audio)], [(0, 4_800), (5_040, len(audio))]).to_dict()
    assert report["chunk_seams"]["count"] == 1  # joins at the very start and end are no seams
    assert report["segment_edges"]["count"] == 2
    assert report["segment_edges"]["max"] > 0.5  # the second segment starts and stops abruptly


# --- configurations --------------------------------------------------------------------


def test_contenders_from_profiles_and_files(tmp_path):
    cfg = tmp_path / "mine.toml"
    cfg.write_text('extends = "rtx4090"\n[planner]\ntarget_tokens = 64\n', encoding="utf-8")
    cs = contenders_from(["baseline", "rtx4090"], [cfg, cfg])
    assert [c.name for c in cs] == ["baseline", "rtx4090", "mine", "mine-2"]
    assert cs[2].config.config.planner.target_tokens == 64
    assert [c.name for c in contenders_from(["rtx4090"], [cfg], configs_first=True)] == ["mine", "rtx4090"]
    with pytest.raises(ConfigError, match="unknown profile 'rtx3090'.*baseline"):
        contenders_from(["rtx3090", "baseline"])
    with pytest.raises(ConfigError, match="at least two configurations"):
        contenders_from(["baseline"])


# --- report files from hand-made samples ------------------------------------------------


def _sample(contender, text_id, repeat, wall, *, ttfa=1.0, memory=100 * 2**20, segments=1,
            tokens=(1, 2, 3)):
    return RunSample(
        contender=contender, text_id=text_id, repeat=repeat, time_to_first_audio=ttfa, rtf=wall / 2.0,
        rtf_speech=wall / 2.0, wall_seconds=wall, audio_seconds=2.0, speech_audio_seconds=2.0,
        speech_tokens=len(tokens), speech_tokens_per_second=len(tokens) / wall, peak_memory_bytes=memory,
        planning_seconds=0.001, segments=segments, chunks=2, estimated_tokens=30, exact_tokens=31,
        segment_tokens=[30], segment_exact_tokens=[31], max_context_tokens=34, over_limit_segments=0,
        s3gen_seconds=wall / 2, s3gen_calls=2, stopped_by=["benchmark_length"],
        seams={"chunk_seams": {"count": 1, "median": 1.1, "max": 1.1},
               "segment_edges": {"count": 1, "median": 0.2, "max": 0.2}},
        speech_token_ids=[list(tokens)])


def _comparison(b_tokens=(1, 2, 3)):
    texts = [ComparisonText("len-32", "x " * 20, "length", 32), ComparisonText("len-64", "x " * 40, "length", 64)]
    samples = []
    for text, scale in (("len-32", 1.0), ("len-64", 2.0)):
        for r, drift in enumerate((1.0, 1.5)):  # the machine slows down in round 2
            samples.append(_sample("A", text, r, 10.0 * scale * drift, ttfa=2.0 * drift))
            samples.append(_sample("B", text, r, 5.0 * scale * drift, ttfa=1.0 * drift,
                                   memory=25 * 2**20, tokens=b_tokens))
    env = {"device": "cpu", "cpu": "test CPU", "cpu_count": 2, "torch_threads": 1, "python": "3",
           "platform": "test", "versions": {"seqopt": "0"}}
    settings = {"repeats": 2, "seed": 0, "warmup_chars": 0, "order": "interleaved", "reference": "A",
                "checkpoint": {"path": "ck", "random_weights": True, "scale": "tiny", "load_seconds": 1.0},
                "benchmark_tokens_per_text_token": 1.0}
    contenders = [{"name": n, "source": "test", "description": "", "estimator": "chatterbox",
                   "splitter": "regex", "planner": {"target_tokens": 96, "max_tokens": 128},
                   "chunk_policy": {"name": "fixed", "chunk_size": 25},
                   "context_policy": {"name": "fixed", "context_window": 50}, "segment_context": "voice",
                   "attention": "sdpa", "crossfade_ms": 10.0, "max_new_tokens": None,
                   "benchmark_tokens_per_text_token": 1.0, "watermark": False} for n in ("A", "B")]
    return Comparison(contenders, texts, samples, settings, env,
                      token_match(samples, ["A", "B"], [t.id for t in texts]), "test memory")


def test_summaries_and_ratios_of_a_comparison():
    result = _comparison()
    s = summaries(result)
    assert s["len-64"]["A"]["wall_seconds"]["median"] == pytest.approx(25.0)  # 20 and 30
    assert s["len-64"]["A"]["wall_seconds"]["min"] == 20.0
    r = ratios(result)
    assert set(r["len-32"]) == {"B"}  # the reference has no ratio to itself
    assert r["len-32"]["B"]["wall_seconds"]["median"] == pytest.approx(0.5)
    assert r["len-32"]["B"]["peak_memory_bytes"]["median"] == pytest.approx(0.25)
    assert r["len-32"]["B"]["speech_tokens_per_second"]["median"] == pytest.approx(2.0)


def test_token_match_finds_the_first_difference():
    assert all(m["identical"] for m in _comparison().token_match)
    differs = _comparison(b_tokens=(1, 5, 3, 4))
    assert [m["first_difference"] for m in differs.token_match] == [1, 1]
    shorter = _comparison(b_tokens=(1, 2))
    assert shorter.token_match[0]["first_difference"] == 2 and not shorter.token_match[0]["identical"]


def test_report_files(tmp_path):
    pytest.importorskip("matplotlib", reason="the compare extra (matplotlib) draws the plots")
    result = _comparison()
    written = write_report(result, tmp_path / "out")
    names = sorted(p.name for p in written.values())
    assert names == ["comparison.json", "memory_vs_context.png", "ratio_to_reference.png", "report.md",
                     "speed_vs_length.png"]
    for path in written.values():
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert data["ratios"]["len-64"]["B"]["time_to_first_audio"]["median"] == pytest.approx(0.5)
    assert len(data["samples"]) == 8 and "speech_token_ids" not in data["samples"][0]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Random weights: the audio is noise, not speech" in md
    assert "| len-64 | `B` / `A` | 0.500x (0.500x–0.500x)" in md
    assert "![Speed against text length](speed_vs_length.png)" in md


def test_report_without_matplotlib_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    result = _comparison()
    written = write_report(result, tmp_path)
    assert sorted(written) == ["json", "markdown"]
    assert "matplotlib is not installed" in (tmp_path / "report.md").read_text()


# --- a real comparison on the tiny checkpoint ----------------------------------------------


class RecordingProgress:
    def __init__(self):
        self.totals, self.labels, self.done = [], [], 0.0

    def start(self, total, description):
        self.totals.append(total)
        self.done = 0.0

    def advance(self, units, description):
        self.done += units
        self.labels.append(description)


@pytest.fixture(scope="module")
def tiny_comparison(tiny_checkpoint, exact_estimator):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = ComparisonRunner(contenders_from(["baseline", "rtx4090"]), checkpoint=str(tiny_checkpoint),
                                  device="cpu")
        texts = length_matrix((20, 140), runner.exact)
        progress = RecordingProgress()
        result = runner.run(texts, repeats=2, warmup="Warm up.", progress=progress)
    finally:
        torch.set_num_threads(before)
    return runner, result, progress


def test_tiny_comparison_runs_every_configuration_interleaved(tiny_comparison):
    runner, result, progress = tiny_comparison
    assert runner.random_weights and runner.tokens_per_text_token == 1.0
    order = [(s.text_id, s.repeat, s.contender) for s in result.samples]
    assert order == interleaved(["len-20", "len-140"], ["baseline", "rtx4090"], 2)
    # the progress bar ran through the warm-up, then through every timed run
    assert len(progress.totals) == 2 and progress.done == pytest.approx(progress.totals[1])
    assert any(label.startswith("warm-up") for label in progress.labels)
    assert "rtx4090 on len-140 (round 2/2)" in progress.labels
    for s in result.samples:
        assert s.time_to_first_audio > 0 and s.wall_seconds > 0 and math.isfinite(s.rtf)
        assert s.peak_memory_bytes is not None and s.peak_memory_bytes > 0
        assert s.exact_tokens == sum(s.segment_exact_tokens) and s.over_limit_segments == 0
        # benchmark length mode: one speech token per text token, start and stop included
        assert s.speech_tokens == s.exact_tokens
        # one S3Gen call per chunk, but none for a segment's last chunk when nothing was left
        assert s.chunks - s.segments <= s.s3gen_calls <= s.chunks


def test_tiny_comparison_measures_what_splitting_changes(tiny_comparison):
    _, result, _ = tiny_comparison
    base = result.samples_for("baseline", "len-140")[0]
    rtx = result.samples_for("rtx4090", "len-140")[0]
    assert base.segments == 1 and rtx.segments >= 2  # baseline never splits; rtx4090 targets 96
    assert rtx.max_context_tokens < base.max_context_tokens
    assert base.seams["chunk_seams"]["count"] == base.chunks - 1
    assert rtx.seams["segment_edges"]["count"] == rtx.segments


def test_tiny_comparison_same_seed_same_tokens_when_unsplit(tiny_comparison):
    _, result, _ = tiny_comparison
    # len-20 is one segment for both: eager (baseline) and sdpa_aligned (rtx4090) sample alike
    assert [(m["text_id"], m["identical"]) for m in result.token_match] == [("len-20", True)]
    # and a seeded configuration repeats itself
    a, b = result.samples_for("rtx4090", "len-140")
    assert a.speech_token_ids == b.speech_token_ids


def test_tiny_comparison_report(tiny_comparison, tmp_path):
    _, result, _ = tiny_comparison
    written = write_report(result, tmp_path, plots=False)
    md = written["markdown"].read_text()
    assert "# seqopt compare: baseline vs rtx4090" in md and "len-140" in md
    data = json.loads(written["json"].read_text())
    assert data["environment"]["device"] == "cpu" and data["settings"]["repeats"] == 2
    assert data["settings"]["checkpoint"]["scale"] == "tiny" and data["settings"]["checkpoint"]["random_weights"]
    assert [c["benchmark_tokens_per_text_token"] for c in data["contenders"]] == [1.0, 1.0]
    assert data["ratios"]["len-140"]["rtx4090"]["rtf"]["n"] == 2
    # each configuration's costs, fitted from its own timed runs' chunk events (warm-up left out)
    for c in data["contenders"]:
        timed = [s for s in result.samples if s.contender == c["name"]]
        vocoder = c["costs"]["vocoder"]
        assert vocoder["samples"] == sum(s.s3gen_calls for s in timed)
        assert vocoder["fixed_seconds"] >= 0 and vocoder["per_token_seconds"] >= 0
        assert vocoder["fixed_seconds"] + vocoder["per_token_seconds"] > 0
    assert "## What the model's work cost" in md and "`rtx4090` |" in md


def test_configurations_must_share_the_model(tmp_path, tiny_checkpoint):
    other = tmp_path / "other.toml"
    other.write_text('extends = "rtx4090"\n[synthesis]\ndtype = "bfloat16"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="synthesis.dtype.*make them equal"):
        ComparisonRunner(contenders_from(["baseline"], [other]), checkpoint=str(tiny_checkpoint))
    # the engine's own settings that decide what is loaded: its voice, its exaggeration
    louder = tmp_path / "louder.toml"
    louder.write_text('extends = "rtx4090"\n[engine.options]\nexaggeration = 0.9\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="engine.options.exaggeration = 0.5.*0.9.*make them equal"):
        ComparisonRunner(contenders_from(["baseline"], [louder]), checkpoint=str(tiny_checkpoint))


# --- the command ---------------------------------------------------------------------


def test_compare_command_writes_the_report(tmp_path, tiny_checkpoint, one_torch_thread):
    text = tmp_path / "mine.txt"
    text.write_text("A short text of my own. It has two sentences.", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compare", "-f", str(text), "--checkpoint", str(tiny_checkpoint),
                                       "--repeats", "1", "--no-warmup", "--no-plots", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "file-mine" in result.output and "rtx4090/baseline" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["comparison.json", "report.md"]
    data = json.loads((out / "comparison.json").read_text())
    assert [t["id"] for t in data["texts"]] == ["file-mine"]  # -f alone: only your texts


@pytest.mark.parametrize(("args", "message"), [
    (["--profiles", "baseline"], "at least two configurations"),
    (["--profiles", "baseline,fast"], "unknown profile 'fast'"),
    (["--lengths", "32,abc"], "comma-separated whole numbers"),
    (["--lengths", "0"], "between 1 and 2048"),
    (["--classes", "news,legal"], "unknown content class(es) legal"),
])
def test_compare_command_bad_options(args, message, tiny_checkpoint):
    result = CliRunner().invoke(main, ["compare", "--checkpoint", str(tiny_checkpoint), *args])
    assert result.exit_code != 0
    assert message in result.output
