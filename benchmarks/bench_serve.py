"""`seqopt serve` under concurrent clients: shared batch against one request at a time.

Run from the repository root. A full-size random checkpoint (about 3.2 GB) is
needed; without ``--checkpoint`` one is written once into
``benchmarks/.cache/ck_full`` (git-ignored), as ``bench_engine.py`` does::

    python benchmarks/bench_serve.py --device cuda                # 1, 4 and 16 clients
    python benchmarks/bench_serve.py --clients 1,4 --lengths 40,80,120 --stagger 4   # the reduced CPU run
    python benchmarks/bench_serve.py --quick                      # smoke test, tiny checkpoint

It starts the real server (``seqopt serve`` in a child process, the ``rtx4090``
profile, benchmark length mode, watermark off unless ``--watermark``), sends one
warm-up request, then for each number of clients and each arrival pattern sends
the same set of requests twice:

* **shared**: every request is sent at its arrival time; they run at once and
  their T3 rows share the server's batch;
* **one at a time**: the same requests at the same arrival times, but the next
  is sent only when the previous one's body has ended (a server of one stream).

Requests ask for raw PCM (``response_format: pcm``), each with its own seed and a
text from the corpus whose length cycles through ``--lengths`` (mixed lengths).
Arrival is ``together`` (all at 0) or ``staggered`` (client *i* at *i* x
``--stagger`` seconds). Per request the client records when each piece of audio
arrived; from those, measured from the request's arrival time:

* **TTFA**: when the first audio byte came (p50 and p95 over the requests);
* **stalls**: gaps a listener who starts at the first byte would hear
  (``playback_stalls``), per stream;
* **audio s / wall s**: all requests' audio over the time from the first arrival
  to the last body's end (the server's throughput for that load).

Each run also polls ``/metrics`` for the T3 batch width, and checks that each
request's audio is byte-identical in the two modes (the same seed gives the same
audio, whatever else shares the batch). Ratios are shared / one at a time, in the
same run. **Random weights make noise, not speech.**
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
from bench_engine import benchmark_checkpoint  # noqa: E402

NAME = "bench_serve"
MODEL_PACKAGES = ("torch", "transformers", "chatterbox-tts", "numpy", "fastapi", "uvicorn", "httpx")
CLIENTS = (1, 4, 16)
LENGTHS = (80, 200, 400)  #: characters, cycled over the clients: mixed lengths
QUICK_LENGTHS = (30, 60)
ARRIVALS = ("together", "staggered")
MODES = ("shared", "one at a time")
SAMPLE_RATE = 24_000
BYTES_PER_SECOND = 2 * SAMPLE_RATE  # s16le mono
START_TIMEOUT_S = 1800.0  # loading and measuring the costs on a slow CPU
LISTEN = re.compile(r"listening on (http://\S+)")


# --- the texts -----------------------------------------------------------------------


def mixed_texts(count: int, lengths: tuple[int, ...]) -> list[str]:
    """``count`` different texts of consecutive whole corpus sentences, the i-th about
    ``lengths[i % len(lengths)]`` characters (at least one sentence; never cut mid-sentence)."""
    from seqopt_core import split_sentences

    source = "\n\n".join(c.corpus_paragraphs())
    sentences = [source[s.start:s.end].strip() for s in split_sentences(source, c.plugin_host().create(
        "splitter", "regex"), "regex")]
    sentences = [s for s in sentences if s]
    texts, at = [], 0
    for i in range(count):
        target, parts = lengths[i % len(lengths)], []
        while not parts or len(" ".join(parts)) + len(sentences[at % len(sentences)]) <= target * 1.1:
            parts.append(sentences[at % len(sentences)])
            at += 1
            if len(" ".join(parts)) >= target * 0.9:
                break
        texts.append(" ".join(parts))
    return texts


def note(message: str) -> None:
    """A progress line on stderr (a run takes minutes to hours: follow it with tail -f)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the server ----------------------------------------------------------------------


class ServerProcess:
    """``seqopt serve`` in a child process on a free port; ``url`` once it listens."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("w")
        command = [sys.executable, "-m", "seqopt_core", "serve", "--port", "0", *args]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = LISTEN.search(self.log_path.read_text(errors="replace"))
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                raise SystemExit(f"error: seqopt serve exited with {self.process.returncode}:\n"
                                 + self.log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"error: seqopt serve did not listen within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


# --- the clients ---------------------------------------------------------------------


@dataclass
class RequestResult:
    """One request as its client saw it; times in seconds from the run's start."""

    index: int
    chars: int
    arrival: float
    pieces: list[tuple[float, int]] = field(default_factory=list)  # (arrived, bytes)
    ended: float = 0.0
    status: int = 0
    error: str | None = None
    audio: bytes = b""

    @property
    def ttfa(self) -> float | None:
        return self.pieces[0][0] - self.arrival if self.pieces else None

    @property
    def audio_seconds(self) -> float:
        return len(self.audio) / BYTES_PER_SECOND

    def stalls(self) -> dict[str, float | int]:
        return c.playback_stalls([(t, n / BYTES_PER_SECOND) for t, n in self.pieces])


def speak(client: Any, url: str, text: str, seed: int, result: RequestResult, start: float) -> None:
    """POST one request, streaming the PCM body into ``result``."""
    body = {"model": "rtx4090", "input": text, "voice": "default", "response_format": "pcm", "seed": seed}
    audio = bytearray()
    try:
        with client.stream("POST", f"{url}/v1/audio/speech", json=body) as response:
            result.status = response.status_code
            if response.status_code != 200:
                result.error = response.read().decode(errors="replace")[:500]
                return
            for piece in response.iter_bytes():
                if piece:
                    result.pieces.append((time.perf_counter() - start, len(piece)))
                    audio += piece
    except Exception as exc:  # noqa: BLE001 - a failed request is reported, not raised
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.ended = time.perf_counter() - start
        result.audio = bytes(audio)


def batch_rows(text: str) -> float | None:
    """``seqopt_t3_batch_rows`` from a /metrics page."""
    found = re.search(r"^seqopt_t3_batch_rows\s+(\S+)", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def run_load(url: str, texts: list[str], arrivals: list[float], mode: str, seed: int) -> dict[str, Any]:
    """The requests at their arrival times, at once (``shared``) or one after another;
    with the T3 batch width polled from /metrics while they run."""
    import httpx

    results = [RequestResult(i, len(t), arrivals[i]) for i, t in enumerate(texts)]
    widths: list[float] = []
    done = threading.Event()
    limits = httpx.Limits(max_connections=len(texts) + 2, max_keepalive_connections=len(texts) + 2)
    with httpx.Client(timeout=httpx.Timeout(None, connect=30.0), limits=limits) as client:
        start = time.perf_counter()

        def poll() -> None:
            while not done.wait(0.25):
                try:
                    width = batch_rows(client.get(f"{url}/metrics").text)
                except httpx.HTTPError:
                    continue
                if width is not None:
                    widths.append(width)

        def send(order: list[int]) -> None:
            """The requests of ``order`` one after another, none before its arrival time."""
            for i in order:
                delay = arrivals[i] - (time.perf_counter() - start)
                if delay > 0:
                    time.sleep(delay)
                speak(client, url, texts[i], seed + i, results[i], start)

        by_arrival = sorted(range(len(texts)), key=lambda i: (arrivals[i], i))
        orders = [[i] for i in by_arrival] if mode == "shared" else [by_arrival]
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        threads = [threading.Thread(target=send, args=(order,)) for order in orders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        poller.join()
    return summarize_load(results, widths)


def summarize_load(results: list[RequestResult], widths: list[float]) -> dict[str, Any]:
    failed = [{"index": r.index, "status": r.status, "error": r.error} for r in results if r.error]
    ttfas = [r.ttfa for r in results if r.ttfa is not None]
    stalls = [r.stalls() for r in results]
    first, last = min(r.arrival for r in results), max(r.ended for r in results)
    audio = sum(r.audio_seconds for r in results)
    return {
        "requests": len(results), "failed": failed,
        "ttfa_p50": c.percentile(ttfas, 50) if ttfas else None,
        "ttfa_p95": c.percentile(ttfas, 95) if ttfas else None,
        "ttfa_max": max(ttfas) if ttfas else None,
        "stalls_per_stream": statistics.mean(s["stalls"] for s in stalls),
        "stall_seconds_per_stream": statistics.mean(s["stall_seconds"] for s in stalls),
        "streams_with_stalls": sum(1 for s in stalls if s["stalls"]),
        "audio_seconds": audio, "wall_seconds": last - first,
        "audio_per_wall": audio / (last - first) if last > first else None,
        "t3_batch_rows_max": max(widths) if widths else None,
        "t3_batch_rows_mean": statistics.mean(w for w in widths if w > 0) if any(widths) else None,
        "per_request": [{"index": r.index, "chars": r.chars, "arrival": r.arrival, "ttfa": r.ttfa,
                         "ended": r.ended, "audio_seconds": r.audio_seconds, "pieces": len(r.pieces),
                         **r.stalls()} for r in results],
        "_audio": [r.audio for r in results],
    }


# --- main ----------------------------------------------------------------------------


def _ints(value: str, what: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise SystemExit(f"error: {what} must be whole numbers separated by commas, got {value!r}") from None
    if not out or min(out) < 1:
        raise SystemExit(f"error: {what} must be at least 1 each, got {value!r}")
    return out


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def write_config(folder: Path, checkpoint: Path, seed: int, watermark: bool) -> Path:
    path = folder / "bench_serve.toml"
    path.write_text(
        'extends = "rtx4090"\n\n[synthesis]\n'
        f"seed = {seed}\n\n[engine.options]\n"
        f'checkpoint = "{checkpoint.as_posix()}"\n'
        f"watermark = {'true' if watermark else 'false'}\n"
        "benchmark_tokens_per_text_token = 1.0\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = c.base_parser(NAME, __doc__)
    c.add_model_arguments(parser)
    parser.add_argument("--clients", default=None,
                        help=f"numbers of concurrent clients, comma-separated (default {','.join(map(str, CLIENTS))}; "
                             "--quick 1,2)")
    parser.add_argument("--lengths", default=None,
                        help=f"text lengths in characters, cycled over the clients (default "
                             f"{','.join(map(str, LENGTHS))}; --quick {','.join(map(str, QUICK_LENGTHS))})")
    parser.add_argument("--arrivals", default=",".join(ARRIVALS), help="together, staggered or both (default both)")
    parser.add_argument("--stagger", type=float, default=0.5,
                        help="seconds between staggered arrivals (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="request i has seed SEED + i")
    parser.add_argument("--watermark", action="store_true", help="keep the watermark on (default off, as "
                                                                   "bench_engine)")
    args = parser.parse_args(argv)
    if args.repeats not in (None, 1):
        raise SystemExit("error: bench_serve makes one run of each load (--repeats 1); it records every "
                         "request, and each load has several")
    clients = _ints(args.clients or ("1,2" if args.quick else ",".join(map(str, CLIENTS))), "--clients")
    lengths = _ints(args.lengths or ",".join(map(str, QUICK_LENGTHS if args.quick else LENGTHS)), "--lengths")
    arrivals = tuple(a.strip() for a in args.arrivals.split(",") if a.strip())
    if not arrivals or set(arrivals) - set(ARRIVALS):
        raise SystemExit(f"error: --arrivals takes {' and '.join(ARRIVALS)}, got {args.arrivals!r}")
    if args.stagger < 0:
        raise SystemExit("error: --stagger must be at least 0 seconds")
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise SystemExit("error: bench_serve needs httpx: pip install -e '.[dev]'") from None

    tokenizer = c.resolve_tokenizer(args.tokenizer)
    with ExitStack() as stack:
        folder, ck_record = benchmark_checkpoint(stack, args.checkpoint, args.quick, tokenizer, NAME)
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="seqopt-bench-serve-")))
        config = write_config(work, folder, args.seed, args.watermark)
        serve_args = ["--config", str(config), "--device", args.device,
                      "--max-streams", str(max(clients)), "--max-queue", str(max(clients))]
        if args.threads:  # the server's torch threads (the child inherits the environment)
            os.environ["OMP_NUM_THREADS"] = str(args.threads)
        note(f"starting seqopt serve ({' '.join(serve_args)})")
        started = time.perf_counter()
        server = ServerProcess(serve_args, work / "server.log")
        stack.callback(server.stop)
        start_seconds = time.perf_counter() - started
        import httpx

        health = httpx.get(f"{server.url}/health", timeout=30).json()
        env = c.environment(tokenizer, device=str(health.get("device")), checkpoint=ck_record,
                            server_start_seconds=round(start_seconds, 3), threads=args.threads,
                            model_packages=c.package_versions(MODEL_PACKAGES))
        c.print_header(NAME, env, notes=[f"server: {server.url}, profile rtx4090, benchmark length mode, "
                                         f"watermark {'on' if args.watermark else 'off'}"])
        warm = run_load(server.url, mixed_texts(1, lengths[:1]), [0.0], "shared", args.seed + 10_000)
        note(f"warm-up request: TTFA {_fmt(warm['ttfa_p50'])} s, wall {warm['wall_seconds']:.1f} s")
        results: dict[str, Any] = {}
        rows = []
        mismatched = []
        for n in clients:
            texts = mixed_texts(n, lengths)
            for arrival in arrivals:
                if n == 1 and arrival == "staggered":
                    continue  # one client: the same as together
                times = [0.0] * n if arrival == "together" else [i * args.stagger for i in range(n)]
                label = f"{n} client(s), {arrival}"
                by_mode = {}
                for mode in MODES:
                    if n == 1 and mode == "one at a time":
                        continue  # one client is one at a time
                    note(f"{label}: {mode} ({sum(map(len, texts))} characters)")
                    by_mode[mode] = run_load(server.url, texts, times, mode, args.seed)
                    m = by_mode[mode]
                    note(f"  TTFA p50 {_fmt(m['ttfa_p50'])} s p95 {_fmt(m['ttfa_p95'])} s, "
                               f"{m['audio_per_wall'] or 0:.3f} audio s / wall s, failed {len(m['failed'])}")
                same = None
                if len(by_mode) == 2:
                    pairs = zip(by_mode["shared"].pop("_audio"), by_mode["one at a time"].pop("_audio"))
                    equal = [a == b for a, b in pairs]
                    same = all(equal)
                    mismatched += [f"{label}: request {i}" for i, ok in enumerate(equal) if not ok]
                else:
                    by_mode["shared"].pop("_audio")
                results[label] = {"clients": n, "arrival": arrival, "same_audio": same, **by_mode}
                for mode, m in by_mode.items():
                    rows.append([label, mode, _fmt(m["ttfa_p50"]), _fmt(m["ttfa_p95"]),
                                 _fmt(m["stalls_per_stream"]), _fmt(m["audio_per_wall"], 3),
                                 _fmt(m["t3_batch_rows_max"], 0), str(len(m["failed"]))])
                if len(by_mode) == 2:
                    s, o = by_mode["shared"], by_mode["one at a time"]
                    rows.append([label, "shared / one at a time", _ratio(s["ttfa_p50"], o["ttfa_p50"]),
                                 _ratio(s["ttfa_p95"], o["ttfa_p95"]), "",
                                 _ratio(s["audio_per_wall"], o["audio_per_wall"]), "", f"same audio: {same}"])
        c.print_table(["load", "mode", "TTFA p50 s", "TTFA p95 s", "stalls/stream", "audio s/wall s",
                       "T3 rows max", "failed"], rows,
                      title=f"seqopt serve, texts of {','.join(map(str, lengths))} characters (cycled), "
                            f"stagger {args.stagger} s")
        code = server.stop()
        settings = {"clients": list(clients), "lengths": list(lengths), "arrivals": list(arrivals),
                    "stagger_seconds": args.stagger, "seed": args.seed, "device": args.device,
                    "quick": args.quick, "profile": "rtx4090", "watermark": args.watermark,
                    "threads": args.threads}
        warm.pop("_audio")
        c.write_json(args.out, NAME, env, settings, c.rounded({
            "warmup": warm, "loads": results, "audio_mismatches": mismatched, "server_exit_code": code}))
    failed = sum(len(m["failed"]) for r in results.values() for k, m in r.items() if k in MODES)
    if failed or mismatched:
        print(f"error: {failed} request(s) failed, {len(mismatched)} differ between the modes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
