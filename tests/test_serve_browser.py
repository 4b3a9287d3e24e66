"""The page at `/` of `seqopt serve`, in a real headless Chromium against the real server.

The server is the `seqopt serve` command on a tiny random-weight checkpoint (noise, not
speech); the browser is Debian's Chromium driven by Playwright. The page must play audio
while the response is still arriving, show the server's own error messages, stop at once,
work from the keyboard, send the API key when the server wants one, and fetch nothing but
the server's own API. A missing browser or playwright fails these tests (with how to install
them); it never skips them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serve_browser_support import ServeProcess, launch_chromium, request_json, sync_playwright

pytestmark = pytest.mark.slow

#: One segment of about 90 text tokens: with one speech token per text token and chunks of
#: 25 tokens (FAST_CONFIG), about four chunks, each sent as soon as it is decoded.
SENTENCES = ("The first sentence is short. The second one says a little more about the weather "
             "today. A third sentence closes the paragraph, and then we are done.")
#: Far more than the Stop tests let the server generate.
LONG_TEXT = "\n\n".join(f"Paragraph {i} has a few words to say about the weather today." for i in range(40))

#: Random weights never stop by themselves: benchmark length mode makes each segment exactly
#: one speech token per text token; fixed chunks make the number of pieces known.
FAST_CONFIG = """\
extends = "rtx4090"

[chunk_policy]
name = "fixed"
options = { chunk_size = 25 }

[engine.options]
benchmark_tokens_per_text_token = 1.0
"""

FINISHED = "['done', 'error', 'stopped'].includes(window.seqoptPlayer.state)"
KEY_ENV = "SEQOPT_TEST_PAGE_KEY"
KEY = "page-test-key-7f3a"


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve_page") / "fast.toml"
    path.write_text(FAST_CONFIG, encoding="utf-8")
    return path


def _serve(tmp_path_factory, tiny_checkpoint: Path, fast_config: Path, *extra: str,
           env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    log = tmp_path_factory.mktemp("serve_log") / "serve.log"
    args = ["--checkpoint", str(tiny_checkpoint), "--device", "cpu", "--config", str(fast_config), *extra]
    server = ServeProcess(args, log, env={"OMP_NUM_THREADS": "1", **(env or {})})
    try:
        server.wait_until_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint, fast_config) -> Iterator[ServeProcess]:
    """The real `seqopt serve` on the tiny checkpoint, without an API key."""
    yield from _serve(tmp_path_factory, tiny_checkpoint, fast_config)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory, tiny_checkpoint, fast_config) -> Iterator[ServeProcess]:
    """The real `seqopt serve` that wants `Authorization: Bearer <KEY>`."""
    yield from _serve(tmp_path_factory, tiny_checkpoint, fast_config, "--api-key-env", KEY_ENV,
                      env={KEY_ENV: KEY})


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    start = sync_playwright()
    with start() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


class PageUnderTest:
    """One fresh browser context on the server's page, with every URL the page requested."""

    def __init__(self, browser: Any, server: ServeProcess) -> None:
        self.server = server
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(240_000)  # a tiny model on a busy CPU
        self.requested: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))
        self.page.goto(server.url + "/")

    def wait_until_ready(self) -> None:
        self.page.locator("#status").filter(has_text="Ready.").wait_for()

    def player(self) -> dict[str, Any]:
        return self.page.evaluate("() => ({...window.seqoptPlayer})")

    def play(self, text: str) -> dict[str, Any]:
        """Types `text`, clicks Play and waits until playback has ended (or failed)."""
        self.page.get_by_label("Text").fill(text)
        self.page.get_by_role("button", name="Play").click()
        self.page.wait_for_function(FINISHED)
        return self.player()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser, server) -> Iterator[PageUnderTest]:
    opened = PageUnderTest(browser, server)
    opened.wait_until_ready()
    yield opened
    opened.close()


def test_the_pickers_list_the_servers_voices_and_profiles(page, server):
    _, models = request_json(server.url + "/v1/models")
    _, voices = request_json(server.url + "/v1/voices")
    profiles = [m["id"] for m in models["data"] if m["id"] == m["profile"]]
    assert profiles and "tts-1" not in profiles
    options = page.page.locator("#profile option").all_inner_texts()
    assert options == profiles
    assert page.page.locator("#voice option").all_inner_texts() == [v["id"] for v in voices["data"]]
    assert page.page.get_by_label("Voice").input_value() == "default"


def test_audio_starts_before_the_response_has_finished(page, server):
    player = page.play(SENTENCES)
    assert player["error"] is None and player["state"] == "done", player
    assert player["pieces"] >= 2
    assert player["firstAudioAt"] < player["responseDoneAt"]
    assert player["clickedAt"] < player["firstAudioAt"]
    # Every byte became audio: 16-bit mono at the server's rate.
    assert player["audioSeconds"] == pytest.approx(player["bytes"] / 2 / player["sampleRate"])
    assert player["sampleRate"] == 24000 and player["scheduled"] == 0
    ttfa = page.page.locator("#ttfa").inner_text()
    assert ttfa == f"{math.floor(player['firstAudioAt'] - player['clickedAt'] + 0.5)} ms"  # JS Math.round
    assert page.page.locator("#pieces").inner_text() == str(player["pieces"])
    status = page.page.locator("#status").inner_text()
    assert status.startswith(f"Done: {player['pieces']} chunks") and ttfa in status
    assert page.console_errors == []
    # Nothing but the server's own page and API.
    assert page.requested and all(url.startswith(server.url + "/") for url in page.requested), page.requested
    assert server.url + "/v1/audio/speech" in page.requested


def test_an_empty_text_shows_the_servers_message(page, server):
    model, voice = (page.page.get_by_label(name).input_value() for name in ("Profile", "Voice"))
    status, body = request_json(server.url + "/v1/audio/speech", {
        "model": model, "input": "", "voice": voice, "response_format": "pcm", "stream_format": "audio"})
    assert status == 400
    message = body["error"]["message"]
    player = page.play("")
    assert player["state"] == "error" and player["error"] == message
    assert page.page.locator("#status").inner_text() == f"Error: {message}"
    assert player["pieces"] == 0 and player["firstAudioAt"] is None
    assert page.page.get_by_role("button", name="Play").is_enabled()


def test_stop_ends_the_stream_and_the_playback(page):
    page.page.get_by_label("Text").fill(LONG_TEXT)
    page.page.get_by_role("button", name="Play").click()
    page.page.wait_for_function("window.seqoptPlayer.pieces >= 1")
    page.page.get_by_role("button", name="Stop").click()
    player = page.player()
    assert player["state"] == "stopped" and player["error"] is None
    assert player["responseDoneAt"] is None and player["scheduled"] == 0
    assert page.page.locator("#status").inner_text().startswith("Stopped after")
    assert page.page.get_by_role("button", name="Play").is_enabled()
    assert page.page.get_by_role("button", name="Stop").is_disabled()
    # The page (and the server) can go again at once.
    again = page.play(SENTENCES)
    assert again["state"] == "done" and again["error"] is None and again["pieces"] >= 2


def test_the_keyboard_alone_plays_and_stops(page):
    text_box = page.page.get_by_label("Text")
    text_box.fill(LONG_TEXT)
    text_box.focus()
    page.page.keyboard.press("Control+Enter")
    page.page.wait_for_function("window.seqoptPlayer.pieces >= 1")
    assert page.page.evaluate("document.activeElement.id") in ("text", "stop")
    page.page.keyboard.press("Escape")
    player = page.player()
    assert player["state"] == "stopped" and player["scheduled"] == 0
    # Tab reaches every control in reading order.
    page.page.get_by_label("Text").focus()
    reached = []
    for _ in range(4):
        page.page.keyboard.press("Tab")
        reached.append(page.page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert reached == ["voice", "profile", "SUMMARY", "play"]


def test_the_pcm_decoder_carries_an_odd_byte_to_the_next_piece(page):
    pieces = page.page.evaluate("""() => {
        const decoder = window.seqoptPcm16Decoder();
        const out = [];
        for (const bytes of [[0x00, 0x40, 0xff], [0x7f], [0x00, 0x80, 0x01], [], [0x00]]) {
            out.push([Array.from(decoder.push(new Uint8Array(bytes))), decoder.pending]);
        }
        return out;
    }""")
    assert pieces == [
        [[0.5], 1],                      # 0x4000, and 0xff waits
        [[0x7fff / 32768], 0],           # 0x7fff from the carried byte and this one
        [[-1.0], 1],                     # 0x8000, and 0x01 waits
        [[], 1],
        [[1 / 32768], 0],                # 0x0001
    ]


def test_the_api_key_is_asked_for_sent_as_a_bearer_and_kept_out_of_the_url(browser, keyed_server):
    opened = PageUnderTest(browser, keyed_server)
    try:
        page = opened.page
        page.locator("#status").filter(has_text="needs an API key").wait_for()
        assert page.evaluate("document.activeElement.id") == "api-key"
        authorisations: list[str | None] = []
        page.on("request", lambda r: "/v1/" in r.url
                and authorisations.append(r.headers.get("authorization")))
        page.get_by_label("API key").fill(KEY)
        page.get_by_label("API key").press("Enter")  # applies the key; does not play
        opened.wait_until_ready()
        assert opened.player()["state"] == "idle"
        player = opened.play(SENTENCES)
        assert player["state"] == "done" and player["error"] is None, player
        assert len(authorisations) == 3 and set(authorisations) == {f"Bearer {KEY}"}
        # Kept for the tab: a reload needs no typing; never part of a URL.
        page.reload()
        opened.wait_until_ready()
        assert page.get_by_label("API key").input_value() == KEY
        assert not any(KEY in url for url in opened.requested)
    finally:
        opened.close()


def test_a_wrong_key_shows_the_servers_message(browser, keyed_server):
    status, body = request_json(keyed_server.url + "/v1/voices", headers={"Authorization": "Bearer wrong"})
    assert status == 401
    opened = PageUnderTest(browser, keyed_server)
    try:
        opened.page.locator("#status").filter(has_text="needs an API key").wait_for()
        opened.page.get_by_label("API key").fill("wrong")
        opened.page.get_by_label("API key").press("Enter")
        opened.page.locator("#status").filter(has_text=body["error"]["message"]).wait_for()
        assert opened.page.locator("#profile option").count() == 0
    finally:
        opened.close()
