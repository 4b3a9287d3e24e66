"""The official `openai` client against `seqopt serve` on the tiny random-weight Chatterbox
checkpoint (the real model code; noise, not speech): wav, pcm and sse stream, and the bytes
are the audio `Pipeline.stream` gives alone for the same seed. Concurrent requests share
the model and still each get their alone audio.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from seqopt_core import Pipeline
from seqopt_core.server.voices import VoiceLibrary
from serve_support import alone_pcm, serve

pytestmark = pytest.mark.slow

KEY = "openai-test-key-21c9"
TEXT = "The first sentence is short. The second one says a little more about the weather."
#: Mixed lengths, for the concurrent requests.
TEXTS = ["Hello there.", TEXT, "One more, of middling length, with a clause.", "Short again."]


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoint) -> Pipeline:
    """Random weights never stop by themselves: one speech token per text token, fixed chunks."""
    return Pipeline.from_config(overrides={
        "engine": {"options": {"checkpoint": str(tiny_checkpoint), "benchmark_tokens_per_text_token": 1.0}},
        "chunk_policy": {"name": "fixed", "options": {"chunk_size": 25}},
        "synthesis": {"device": "cpu", "seed": 0}})


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_voices")
    (folder / "broken.wav").write_bytes(b"this is not audio at all")
    return folder


@pytest.fixture(scope="module")
def live(pipeline, voices_dir):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models run fastest on one thread
    try:
        with serve(pipeline, api_key=KEY, voices=VoiceLibrary(voices_dir)) as server:
            yield server
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def client(live):
    try:
        import openai
    except ImportError as exc:
        pytest.fail(f"this test needs the openai client ({exc}): pip install -e '.[dev]'", pytrace=False)
    return openai.OpenAI(base_url=live.url + "/v1", api_key=KEY, max_retries=0, timeout=300)


def stream_bytes(client, **params) -> tuple[bytes, dict[str, str]]:
    params = {"model": "tts-1", "voice": "default", **params}
    with client.audio.speech.with_streaming_response.create(**params) as response:
        pieces = list(response.iter_bytes())
        return b"".join(pieces), dict(response.headers)


def test_pcm_streams_the_alone_audio(client, pipeline):
    data, headers = stream_bytes(client, input=TEXT, response_format="pcm", extra_body={"seed": 3})
    assert headers["x-sample-rate"] == "24000" and headers["content-type"] == "audio/pcm"
    assert data == alone_pcm(pipeline, TEXT, seed=3)


def test_wav_streams_a_header_and_the_alone_audio(client, pipeline):
    import io

    import soundfile

    data, headers = stream_bytes(client, input=TEXT, response_format="wav", extra_body={"seed": 4})
    assert headers["content-type"] == "audio/wav"
    expected = alone_pcm(pipeline, TEXT, seed=4)
    assert data[44:] == expected
    samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
    assert rate == 24000 and samples.tobytes() == expected


def test_sse_streams_deltas_of_the_alone_audio_then_done(client, pipeline):
    with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="default", input=TEXT, response_format="pcm",
            stream_format="sse", extra_body={"seed": 5}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    events = [json.loads(line[len("data: "):]) for line in lines]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) >= 2 and events[-1]["type"] == "speech.audio.done"
    assert b"".join(base64.b64decode(e["audio"]) for e in deltas) == alone_pcm(pipeline, TEXT, seed=5)
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == pipeline.planner.plan(TEXT).total_tokens
    assert usage["output_tokens"] > 0


def test_the_client_sees_openai_errors(client):
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        stream_bytes(client, input="Hello.", response_format="pcm", voice="alloy")
    assert "unknown voice 'alloy'" in str(caught.value)
    wrong = openai.OpenAI(base_url=str(client.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stream_bytes(wrong, input="Hello.", response_format="pcm")


def test_an_unusable_voice_file_is_a_400_that_names_no_path(live, voices_dir):
    response = httpx.post(live.url + "/v1/audio/speech", headers={"Authorization": f"Bearer {KEY}"},
                          json={"input": "Hello.", "voice": "broken", "response_format": "pcm"}, timeout=300)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "voice" and "broken" in error["message"]
    assert str(voices_dir) not in error["message"] and "Traceback" not in response.text


def test_concurrent_requests_on_the_model_each_get_their_alone_audio(live, pipeline):
    expected = [alone_pcm(pipeline, text, seed=8) for text in TEXTS]

    def post(text: str) -> httpx.Response:
        return httpx.post(live.url + "/v1/audio/speech", headers={"Authorization": f"Bearer {KEY}"},
                          json={"input": text, "seed": 8, "response_format": "pcm"}, timeout=300)

    with ThreadPoolExecutor(len(TEXTS)) as pool:
        responses = list(pool.map(post, TEXTS))
    for text, response, audio in zip(TEXTS, responses, expected):
        assert response.status_code == 200 and response.content == audio, text
