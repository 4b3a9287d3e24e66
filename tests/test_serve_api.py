"""`seqopt serve`'s HTTP API on the sine engine: the listings, the speech formats, voices,
every bad input of issue 15 with its documented status and message, and the API key.

The server is the real one (uvicorn, FastAPI, the service) on a free loopback port, in a
thread; the sine engine stands in for the model so that each request takes milliseconds.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import httpx
import numpy as np
import pytest

from seqopt_core.server.audio_formats import audio_formats
from seqopt_core.server.voices import VoiceLibrary
from serve_support import TEXT, alone_pcm, serve, sine_host, sine_pipeline

MAX_INPUT_CHARS = 300
KEY = "test-key-5b1e"
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def host():
    return sine_host()


@pytest.fixture(scope="module")
def pipelines(host):
    return {"rtx4090": sine_pipeline(host), "baseline": sine_pipeline(host, {"pitch_hz": 330.0})}


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve_voices")
    folder = root / "voices"
    folder.mkdir()
    (folder / "alice.wav").write_bytes(b"RIFF alice's voice")
    (folder / "bob.flac").write_bytes(b"fLaC bob's reference recording")
    (folder / "notes.txt").write_text("not a voice", encoding="utf-8")
    (folder / "sub.wav").mkdir()  # a folder with a voice's name is not a voice
    secret = root / "secret.wav"
    secret.write_bytes(b"RIFF outside the voices folder")
    os.symlink(secret, folder / "escape.wav")  # a symlink out of the folder
    os.symlink(folder / "alice.wav", folder / "alias.wav")  # a symlink that stays inside
    return folder


@pytest.fixture(scope="module")
def server(pipelines, voices_dir):
    with serve(pipelines, "rtx4090", max_input_chars=MAX_INPUT_CHARS, voices=VoiceLibrary(voices_dir)) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def keyed(pipelines):
    with serve(pipelines, "rtx4090", api_key=KEY) as live:
        with httpx.Client(base_url=live.url, timeout=120) as http:
            yield http


def speech(client: httpx.Client, **body) -> httpx.Response:
    return client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "default", **body})


def assert_error(response: httpx.Response, status: int, *fragments: str, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body
    message = body["error"]["message"]
    for fragment in fragments:
        assert fragment in message, message
    if param is not None:
        assert body["error"]["param"] == param
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body["error"]


# --- listings ----------------------------------------------------------------------------


def test_models_list_the_profiles_default_first_then_the_openai_names(client):
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    rows = [(m["id"], m["profile"], m["object"], m["owned_by"]) for m in body["data"]]
    assert rows == [("rtx4090", "rtx4090", "model", "seqopt"), ("baseline", "baseline", "model", "seqopt"),
                    ("tts-1", "rtx4090", "model", "seqopt"), ("tts-1-hd", "rtx4090", "model", "seqopt"),
                    ("gpt-4o-mini-tts", "rtx4090", "model", "seqopt")]
    assert client.get("/v1/models/tts-1-hd").json()["profile"] == "rtx4090"
    assert_error(client.get("/v1/models/alloy"), 404, "alloy")


def test_voices_list_default_and_the_folders_audio_files_only(client):
    body = client.get("/v1/voices").json()
    assert body == {"object": "list", "data": [{"id": v, "object": "voice"}
                                               for v in ("default", "alias", "alice", "bob")]}


def test_health_says_what_runs(client):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert (body["engine"], body["device"], body["random_weights"]) == ("sine", "cpu", False)
    assert body["profiles"] == ["rtx4090", "baseline"] and body["default_profile"] == "rtx4090"
    assert (body["active"], body["queued"]) == (0, 0)
    assert body["sample_rate"] == 24000 and "pcm" in body["formats"] and "wav" in body["formats"]


def test_the_page_is_served_at_the_root(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/v1/audio/speech" in page.text


def test_unknown_routes_and_methods_are_json_errors(client):
    assert_error(client.get("/v2/nothing"), 404, "GET /v2/nothing", "/v1/audio/speech")
    assert_error(client.get("/v1/audio/speech"), 405, "GET")
    assert_error(client.get("/docs"), 404)


# --- speech --------------------------------------------------------------------------------


def test_pcm_is_the_alone_audio_with_the_rate_and_profile_headers(client, pipelines):
    response = speech(client, input=TEXT, response_format="pcm", seed=3)
    assert response.status_code == 200, response.text
    assert response.headers["x-sample-rate"] == "24000"
    assert response.headers["x-seqopt-profile"] == "rtx4090"
    assert response.headers["content-type"] == audio_formats()["pcm"].media_type
    assert response.content == alone_pcm(pipelines["rtx4090"], TEXT, seed=3)


def test_wav_is_a_header_then_the_alone_audio(client, pipelines):
    response = speech(client, input=TEXT, response_format="wav", seed=4, model="baseline")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    assert response.headers["x-seqopt-profile"] == "baseline"
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
    assert response.content[44:] == alone_pcm(pipelines["baseline"], TEXT, seed=4)


def test_the_profile_field_overrides_the_model(client):
    response = speech(client, input="Hello there.", response_format="pcm", model="tts-1", profile="baseline")
    assert response.status_code == 200 and response.headers["x-seqopt-profile"] == "baseline"


def test_a_seed_omitted_is_the_configs_seed(client, pipelines):
    response = speech(client, input=TEXT, response_format="pcm")
    assert response.content == alone_pcm(pipelines["rtx4090"], TEXT, seed=7)


def test_sse_sends_base64_deltas_then_done_with_usage(client, pipelines):
    response = speech(client, input=TEXT, response_format="pcm", stream_format="sse", seed=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(block[len("data: "):]) for block in response.text.split("\n\n") if block]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert len(events) > 2
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert audio == alone_pcm(pipelines["rtx4090"], TEXT, seed=5)
    done = events[-1]
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


@pytest.mark.parametrize("name", [n for n, f in audio_formats().items() if f.available and n not in ("wav", "pcm")])
def test_every_available_compressed_format_streams_its_media_type(client, name):
    response = speech(client, input="Hello there. A second sentence.", response_format=name)
    assert response.status_code == 200 and len(response.content) > 0
    assert response.headers["content-type"] == audio_formats()[name].media_type


def test_mp3_is_openais_default_format(client):
    response = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": "default"})
    if audio_formats()["mp3"].available:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
    else:
        assert_error(response, 400, "mp3", param="response_format")


def test_a_voice_from_the_folder_speaks_in_that_voice(client, pipelines, voices_dir):
    response = speech(client, input=TEXT, response_format="pcm", voice="alice", seed=2)
    expected = alone_pcm(pipelines["rtx4090"], TEXT, seed=2, voice=voices_dir / "alice.wav")
    assert response.status_code == 200 and response.content == expected
    assert expected != alone_pcm(pipelines["rtx4090"], TEXT, seed=2)  # it is another voice
    as_object = client.post("/v1/audio/speech", json={"input": TEXT, "response_format": "pcm", "seed": 2,
                                                      "voice": {"id": "alice"}})
    assert as_object.content == expected


# --- bad input ------------------------------------------------------------------------------

BAD_REQUESTS = [
    # (name, body, status, param, message fragments)
    ("empty", {"input": ""}, 400, "input", ["empty"]),
    ("whitespace", {"input": " \n\t "}, 400, "input", ["empty"]),
    ("control character", {"input": "a\x07b"}, 400, "input", ["U+0007"]),
    ("missing input", {}, 400, "input", ["input is required"]),
    ("input not a string", {"input": 42}, 400, "input", ["input must be a string"]),
    ("too long", {"input": "word " * 100}, 413, "input", [str(MAX_INPUT_CHARS), "500 characters"]),
    ("unknown model", {"input": "Hi.", "model": "gpt-5"}, 400, "model",
     ["'gpt-5'", "rtx4090", "baseline", "tts-1"]),
    ("unknown profile", {"input": "Hi.", "profile": "fast"}, 400, "profile", ["'fast'", "rtx4090, baseline"]),
    ("unknown format", {"input": "Hi.", "response_format": "ogg"}, 400, "response_format", ["'ogg'", "pcm"]),
    ("aac", {"input": "Hi.", "response_format": "aac"}, 400, "response_format", ["'aac'", "wav", "pcm"]),
    ("speed", {"input": "Hi.", "speed": 1.25}, 400, "speed", ["1.25", "only speed 1.0"]),
    ("speed as a string", {"input": "Hi.", "speed": "1.0"}, 400, "speed", ["speed must be a number"]),
    ("instructions", {"input": "Hi.", "instructions": "whisper"}, 400, "instructions", ["not supported"]),
    ("stream format", {"input": "Hi.", "stream_format": "chunks"}, 400, "stream_format", ["'audio' or 'sse'"]),
    ("seed", {"input": "Hi.", "seed": "1"}, 400, "seed", ["seed must be"]),
    ("negative seed", {"input": "Hi.", "seed": -1}, 400, "seed", ["at least 0"]),
    ("unknown field", {"input": "Hi.", "pitch": 2}, 400, "pitch", ["pitch", "the fields are"]),
    ("a language the engine does not speak", {"input": "Hi.", "language": "fr"}, 400, "language",
     ["engine 'sine' declares no languages", "'fr'"]),
    ("unknown voice", {"input": "Hi.", "voice": "alloy"}, 400, "voice",
     ["'alloy'", "default, alias, alice, bob"]),
    ("voice of a wrong type", {"input": "Hi.", "voice": 3}, 400, "voice", ["voice must be"]),
]

TRAVERSALS = ["../x", "..%2Fx", "/etc/passwd", "..", "alice/../alice", "voices/alice", "./alice",
              "escape", "sub", "notes", "alice.wav", ".alice", "a" * 65, "C:\\x", "alice\x00"]


@pytest.mark.parametrize("name,body,status,param,fragments", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_each_bad_request_gets_its_status_and_message(client, name, body, status, param, fragments):
    assert_error(client.post("/v1/audio/speech", json=body), status, *fragments, param=param)


@pytest.mark.parametrize("voice", TRAVERSALS)
def test_a_voice_name_never_reaches_a_path_outside_the_folder(client, voice, voices_dir):
    error = assert_error(speech(client, input="Hi.", voice=voice), 400, "unknown voice",
                         "default, alias, alice, bob", param="voice")
    assert str(voices_dir) not in error["message"] and "secret" not in error["message"]


@pytest.mark.parametrize("body,fragment", [
    (b'{"input": "Hi.",', "not valid JSON"),
    (b"[1, 2]", "must be a JSON object, not an array"),
    (b"", "body is empty"),
    (b'{"input": "\xff"}', "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_a_body_that_is_not_a_json_object_is_a_400(client, body, fragment):
    response = client.post("/v1/audio/speech", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400, fragment)


def test_a_5_mb_body_is_refused_before_it_is_parsed(client):
    body = json.dumps({"input": "a" * 5_000_000}).encode()
    assert_error(client.post("/v1/audio/speech", content=body), 413, "larger than", "1048576 bytes")
    assert client.get("/health").json()["status"] == "ok"  # and the server serves on


def test_unexpected_failures_are_a_generic_500_without_details(client, pipelines, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail /secret/path")

    monkeypatch.setattr(pipelines["baseline"], "stream", broken)
    error = assert_error(speech(client, input="Hi.", model="baseline", response_format="pcm"), 500, "log")
    assert "internal detail" not in error["message"] and "secret" not in error["message"]
    assert error["type"] == "server_error"
    monkeypatch.undo()
    assert speech(client, input="Hi.", model="baseline", response_format="pcm").status_code == 200


# --- the API key ----------------------------------------------------------------------------


@pytest.mark.parametrize("headers,code", [
    ({}, "missing_api_key"),
    ({"Authorization": "Bearer wrong"}, "invalid_api_key"),
    ({"Authorization": f"Basic {KEY}"}, "invalid_api_key"),
    ({"Authorization": f"Bearer {KEY}x"}, "invalid_api_key"),
])
def test_a_missing_or_wrong_key_is_a_401_everywhere_but_health_and_the_page(keyed, headers, code):
    for method, path in (("GET", "/v1/models"), ("GET", "/v1/voices"), ("GET", "/metrics"),
                         ("POST", "/v1/audio/speech")):
        response = keyed.request(method, path, headers=headers, json={"input": "Hi."} if method == "POST" else None)
        error = assert_error(response, 401, "API key", "Authorization: Bearer")
        assert error["code"] == code and error["type"] == "authentication_error"
        assert response.headers["www-authenticate"] == "Bearer"
    assert keyed.get("/health", headers=headers).status_code == 200
    assert keyed.get("/", headers=headers).status_code == 200


def test_the_right_key_is_accepted(keyed, pipelines):
    auth = {"Authorization": f"Bearer {KEY}"}
    assert keyed.get("/v1/models", headers=auth).status_code == 200
    response = keyed.post("/v1/audio/speech", headers=auth, json={"input": TEXT, "response_format": "pcm", "seed": 1})
    assert response.status_code == 200 and response.content == alone_pcm(pipelines["rtx4090"], TEXT, seed=1)
    assert "seqopt_requests_total" in keyed.get("/metrics", headers=auth).text


# --- metrics --------------------------------------------------------------------------------


def test_metrics_count_streams_audio_and_statuses(client):
    speech(client, input=TEXT, response_format="pcm")
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line and not line.startswith("#")}
    assert values["seqopt_time_to_first_audio_seconds_count"] >= 1
    assert values["seqopt_real_time_factor_count"] >= 1
    assert values["seqopt_audio_seconds_total"] > 0 and values["seqopt_s3gen_calls_total"] > 0
    assert values['seqopt_requests_total{status="200"}'] >= 1
    assert values["seqopt_active_streams"] == 0 and values["seqopt_queued_requests"] == 0
    assert values["seqopt_t3_batch_rows"] == 0
    assert np.isfinite(values["seqopt_playback_stalls_total"])


# --- the modules' own examples ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["protocol", "settings", "voices"])
def test_the_server_modules_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"seqopt_core.server.{name}"))
    assert result.attempted > 0 and result.failed == 0
