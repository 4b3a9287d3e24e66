"""`seqopt speak` never loses audio: the faults a long run meets, on the real CLI process.

Bad output paths fail before the model loads (the tests pass a checkpoint that
does not exist: the error must be about the output, not the checkpoint);
SIGTERM and SIGINT leave a valid WAV of what was made; SIGKILL and a full disk
leave the previous file untouched; stdout carries nothing but audio.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import pytest

from seqopt_core.wavfile import HEADER_BYTES

LONG_TEXT = "\n\n".join(f"Paragraph {i} has a few words to say about the weather today." for i in range(40))
NO_CHECKPOINT = "/nonexistent/checkpoint"


def seqopt(*args: str, input: str | None = None, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqopt_core.cli", *args], input=input, capture_output=True,
                          timeout=300, env={**os.environ, **(env or {})}, **kw)


def start(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seqopt_core.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


@pytest.fixture
def fast_config(tmp_path):
    """Benchmark length mode: random weights never stop by themselves; one thread each."""
    path = tmp_path / "fast.toml"
    path.write_text('extends = "rtx4090"\n[engine.options]\nbenchmark_tokens_per_text_token = 1.0\n')
    return path


def assert_valid_wav(path: Path) -> int:
    """The file's header matches its samples exactly; returns the frame count."""
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        frames = w.getnframes()
    assert path.stat().st_size == HEADER_BYTES + 2 * frames
    return frames


def wait_for_audio(folder: Path, name: str, proc: subprocess.Popen, min_bytes: int = 24_000) -> None:
    """Until the temporary file beside the target holds some audio."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        parts = list(folder.glob(f".{name}.*.part"))
        if parts and parts[0].stat().st_size > HEADER_BYTES + min_bytes:
            return
        if proc.poll() is not None:
            raise AssertionError(f"speak ended early: {proc.stderr.read().decode()}")
        time.sleep(0.1)
    raise AssertionError("no audio appeared in time")


# --- bad paths fail before anything heavy runs -------------------------------------


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["-o", str(d / "missing" / "out.wav")], "does not exist; create it first"),
    (lambda d: ["-o", str(d)], "is a directory"),
    (lambda d: ["-o", "/dev/full"], "No space left on device"),
    (lambda d: ["-o", "/proc/version"], "cannot write '/proc/version'"),
    (lambda d: ["-o", str(d / "out.wav"), "--metrics", str(d / "missing" / "m.json")], "--metrics"),
    (lambda d: ["-o", str(d / "out.wav"), "--raw"], "--raw applies only to -o -"),
])
def test_bad_outputs_fail_before_the_model_loads(tmp_path, make_args, message):
    done = seqopt("speak", "Hello there.", *make_args(tmp_path), "--checkpoint", NO_CHECKPOINT)
    assert done.returncode == 2, done.stderr
    err = done.stderr.decode()
    assert message in err and NO_CHECKPOINT not in err and "Traceback" not in err
    assert not list(tmp_path.glob(".*.part"))


def test_the_input_file_is_never_the_output(tmp_path):
    text = tmp_path / "book.txt"
    text.write_text("Hello there.")
    done = seqopt("speak", "-f", str(text), "-o", str(text), "--checkpoint", NO_CHECKPOINT)
    assert done.returncode == 2 and "is also the input" in done.stderr.decode()
    assert text.read_text() == "Hello there."


def test_empty_text_fails_before_the_model_loads(tmp_path):
    done = seqopt("speak", "   ", "-o", str(tmp_path / "out.wav"), "--checkpoint", NO_CHECKPOINT)
    assert done.returncode == 2
    assert "empty" in done.stderr.decode() and NO_CHECKPOINT not in done.stderr.decode()


# --- interruptions ------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_leaves_a_valid_wav_of_what_was_made(tmp_path, tiny_checkpoint, fast_config, sig):
    out = tmp_path / "out.wav"
    proc = start("speak", LONG_TEXT, "-o", str(out), "--checkpoint", str(tiny_checkpoint),
                 "--config", str(fast_config), "--metrics", str(tmp_path / "m.json"))
    wait_for_audio(tmp_path, "out.wav", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err.decode()
    assert f"{sig.name}: stopped" in err.decode() and "Traceback" not in err.decode()
    assert assert_valid_wav(out) >= 12_000
    assert not list(tmp_path.glob(".*.part"))
    assert (tmp_path / "m.json").is_file()  # the run's metrics are written too


def test_sigkill_leaves_the_previous_file_untouched(tmp_path, tiny_checkpoint, fast_config):
    out = tmp_path / "out.wav"
    out.write_bytes(b"the previous take")
    proc = start("speak", LONG_TEXT, "-o", str(out), "--checkpoint", str(tiny_checkpoint),
                 "--config", str(fast_config))
    wait_for_audio(tmp_path, "out.wav", proc)
    proc.kill()
    proc.wait(timeout=60)
    assert out.read_bytes() == b"the previous take"


def test_a_full_disk_keeps_the_previous_file_and_what_was_made(tmp_path, tiny_checkpoint, fast_config):
    out = tmp_path / "out.wav"
    out.write_bytes(b"the previous take")
    limit = HEADER_BYTES + 30_000  # a file-size limit: writes past it fail with EFBIG, like a full disk

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "seqopt_core.cli", "speak", LONG_TEXT, "-o", str(out),
                           "--checkpoint", str(tiny_checkpoint), "--config", str(fast_config)],
                          capture_output=True, timeout=300, preexec_fn=limit_file_size)
    err = done.stderr.decode()
    assert done.returncode == 2 and "File too large after" in err and "Traceback" not in err
    assert "was left as it was" in err
    assert out.read_bytes() == b"the previous take"
    partial = tmp_path / "out.wav.partial.wav"
    assert str(partial) in err and 0 < assert_valid_wav(partial) <= 15_000
    assert not list(tmp_path.glob(".*.part"))


def test_a_complete_run_replaces_the_previous_file(tmp_path, tiny_checkpoint, fast_config):
    out = tmp_path / "out.wav"
    out.write_bytes(b"the previous take")
    done = seqopt("speak", "Hello there.", "-o", str(out), "--checkpoint", str(tiny_checkpoint),
                  "--config", str(fast_config))
    assert done.returncode == 0, done.stderr
    assert assert_valid_wav(out) > 0 and not list(tmp_path.glob(".*.part"))


# --- stdout carries nothing but audio ------------------------------------------------

NOISY_PLUGIN = textwrap.dedent('''
    import os
    from seqopt_core import hookimpl

    @hookimpl
    def seqopt_chunk_emitted(event):
        print("a chatty library prints this")
        os.write(1, b"and this, straight to descriptor 1\\n")
''')


def test_stdout_holds_only_the_wav_whatever_a_library_prints(tmp_path, tiny_checkpoint, fast_config):
    site = tmp_path / "site"
    site.mkdir()
    (site / "seqopt_noisy.py").write_text(NOISY_PLUGIN)
    info = site / "seqopt_noisy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: seqopt-noisy\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seqopt]\nnoisy = seqopt_noisy\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    for raw in (False, True):
        done = seqopt("speak", "Hello there.", "-o", "-", *(["--raw"] if raw else []),
                      "--checkpoint", str(tiny_checkpoint), "--config", str(fast_config), env=env)
        assert done.returncode == 0, done.stderr
        assert b"chatty" in done.stderr and b"descriptor 1" in done.stderr
        assert b"chatty" not in done.stdout and b"descriptor 1" not in done.stdout
        if raw:
            assert len(done.stdout) % 2 == 0 and done.stdout[:4] != b"RIFF"
        else:
            assert done.stdout[:4] == b"RIFF"
            with wave.open(io.BytesIO(done.stdout)) as w:
                assert w.getframerate() == 24000


# --- the voice is checked before the model loads ------------------------------------


def _wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x10\x00" * int(seconds * rate))
    return path


@pytest.mark.parametrize("make_voice, message", [
    (lambda d: d / "missing.wav", "missing.wav"),
    (lambda d: d, "is a folder"),
    (lambda d: (d / "text.wav").write_text("not audio at all") and d / "text.wav", "text.wav"),
])
def test_a_bad_voice_fails_before_the_model_loads(tmp_path, make_voice, message):
    voice = make_voice(tmp_path)
    done = seqopt("speak", "Hello there.", "-o", str(tmp_path / "out.wav"), "--voice", str(voice),
                  "--checkpoint", NO_CHECKPOINT)
    err = done.stderr.decode()
    assert done.returncode == 2 and message in err
    assert NO_CHECKPOINT not in err and "Traceback" not in err


def test_a_short_voice_is_warned_about_once(tmp_path):
    voice = _wav(tmp_path / "short [take 1].wav", 1.0)
    done = seqopt("speak", "Hello there.", "-o", str(tmp_path / "out.wav"), "--voice", str(voice),
                  "--checkpoint", NO_CHECKPOINT, env={"COLUMNS": "400"})
    err = done.stderr.decode()
    assert err.count("warning:") == 1 and "short [take 1].wav" in err  # brackets shown literally
    assert NO_CHECKPOINT in err  # then the run goes on (here to the missing checkpoint)
