"""The wire format of ``seqopt serve``: OpenAI's speech request, its error shape, the model
names it maps, and the server-sent events of ``stream_format: "sse"``.

Everything here is pure (pydantic and the standard library), so the rules are tested
without a server.

A speech request (``POST /v1/audio/speech``) is a JSON object with OpenAI's fields
``model``, ``input``, ``voice``, ``response_format``, ``speed``, ``stream_format`` and
``instructions``, plus seqopt's own ``seed`` and ``profile``. Unknown fields are refused
(as OpenAI does), and types are strict: ``"speed": "1"`` is an error, not a number.

An error is ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status of
:class:`ApiError`; the message says what was wrong and what is accepted.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

#: OpenAI's speech model names; each maps to the server's default profile.
OPENAI_MODEL_NAMES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
#: ``voice`` for the checkpoint's built-in voice (or the config's ``engine.options.voice``).
DEFAULT_VOICE = "default"
#: OpenAI's default ``response_format``.
DEFAULT_RESPONSE_FORMAT = "mp3"
#: The ``stream_format`` values.
STREAM_FORMATS = ("audio", "sse")
#: The Content-Type of an ``sse`` response.
SSE_MEDIA_TYPE = "text/event-stream"

#: OpenAI's error types, by what went wrong.
INVALID_REQUEST = "invalid_request_error"
AUTHENTICATION = "authentication_error"
SERVER_ERROR = "server_error"
OVERLOADED = "server_overloaded"


class ApiError(Exception):
    """An error answered to the client: an HTTP ``status`` and OpenAI's error object.

    ``headers`` go with the response (``Retry-After`` on a 503, ``WWW-Authenticate`` on
    a 401).
    """

    def __init__(self, status: int, message: str, *, type: str = INVALID_REQUEST, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body: ``{"error": {"message", "type", "param", "code"}}``."""
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(message: str, *, type: str = INVALID_REQUEST, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object.

    >>> error_body("input is empty", param="input")
    {'error': {'message': 'input is empty', 'type': 'invalid_request_error', 'param': 'input', 'code': None}}
    """
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class VoiceObject(BaseModel):
    """OpenAI's other spelling of a voice: ``{"id": "name"}``."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr


class SpeechRequest(BaseModel):
    """The body of ``POST /v1/audio/speech``."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr | None = Field(None, description="a seqopt profile, or tts-1, tts-1-hd, gpt-4o-mini-tts "
                                                      "(the default profile); default: the default profile")
    input: StrictStr = Field(description="the text to speak")
    voice: StrictStr | VoiceObject = Field(DEFAULT_VOICE, description="'default' or a voice file's name")
    response_format: StrictStr = Field(DEFAULT_RESPONSE_FORMAT, description="mp3, opus, aac, flac, wav or pcm")
    speed: StrictFloat | StrictInt | None = Field(None, description="only 1.0")
    stream_format: StrictStr = Field("audio", description="audio (chunked body) or sse (events)")
    instructions: StrictStr | None = Field(None, description="not supported: must be empty")
    seed: StrictInt | None = Field(None, ge=0, description="sampling seed (default: the config's)")
    profile: StrictStr | None = Field(None, description="the seqopt profile (overrides model)")
    language: StrictStr | None = Field(None, description="the language of the input: en, fr, zh... "
                                                         "(default: the profile's); the profile's engine must speak it")

    @property
    def voice_name(self) -> str:
        return self.voice.id if isinstance(self.voice, VoiceObject) else self.voice


def parse_speech_request(data: object) -> SpeechRequest:
    """``data`` (decoded JSON) as a :class:`SpeechRequest`, or a 400 :class:`ApiError` that
    names the field and what it should be."""
    if not isinstance(data, dict):
        raise ApiError(400, f"the request body must be a JSON object, not {_json_kind(data)}")
    try:
        request = SpeechRequest.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if request.stream_format not in STREAM_FORMATS:
        raise ApiError(400, f"stream_format {request.stream_format!r} is not supported; use "
                            + " or ".join(repr(s) for s in STREAM_FORMATS), param="stream_format")
    if request.speed is not None and float(request.speed) != 1.0:
        raise ApiError(400, f"speed {request.speed!r} cannot be honoured: seqopt speaks at the model's own "
                            "pace, so only speed 1.0 (or none) is accepted", param="speed")
    if request.instructions is not None and request.instructions.strip():
        raise ApiError(400, "instructions are not supported by this model: leave them out (Chatterbox takes "
                            "its style from the voice's reference recording)", param="instructions")
    return request


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null" if value is None else type(value).__name__


_FIELDS = tuple(SpeechRequest.model_fields)


def _validation_error(exc: ValidationError) -> ApiError:
    errors = exc.errors()
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    param = loc[0] if loc else None
    kind = first["type"]
    if kind == "extra_forbidden":
        unknown = sorted({str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and e["loc"]})
        return ApiError(400, f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; the fields "
                             f"are {', '.join(_FIELDS)}", param=unknown[0] if unknown else None)
    if kind == "missing":
        return ApiError(400, f"{param} is required", param=param)
    if param == "voice":
        return ApiError(400, "voice must be a string (a voice name) or an object {\"id\": name}", param=param)
    wanted = {"input": "a string", "model": "a string", "response_format": "a string",
              "stream_format": "a string", "instructions": "a string", "profile": "a string",
              "speed": "a number", "seed": "a whole number of at least 0"}
    got = first.get("input")
    if kind == "greater_than_equal":
        return ApiError(400, f"{param} must be at least {first.get('ctx', {}).get('ge', 0)}, not {got!r}",
                        param=param)
    what = wanted.get(param or "", "of another type")
    return ApiError(400, f"{param} must be {what}, not {_json_kind(got)}"
                         + (f" ({got!r})" if isinstance(got, (int, float, str)) and len(repr(got)) < 40 else ""),
                    param=param)


@dataclass(frozen=True)
class ModelChoice:
    """The profile a request's ``model`` (or ``profile``) names."""

    profile: str
    #: The name the client gave (``tts-1``, ``rtx4090``, ...).
    requested: str


def choose_profile(request: SpeechRequest, profiles: tuple[str, ...], default: str) -> ModelChoice:
    """The profile a request runs on: ``profile`` if given, else ``model`` (a profile, or an
    OpenAI model name meaning ``default``), else ``default``; a 400 for any other name."""
    if request.profile is not None:
        if request.profile not in profiles:
            raise ApiError(400, f"unknown profile {request.profile!r}; this server has "
                                f"{', '.join(profiles)}", param="profile", code="model_not_found")
        return ModelChoice(request.profile, request.profile)
    model = request.model
    if model is None:
        return ModelChoice(default, default)
    if model in profiles:
        return ModelChoice(model, model)
    if model in OPENAI_MODEL_NAMES:
        return ModelChoice(default, model)
    names = (*profiles, *OPENAI_MODEL_NAMES)
    raise ApiError(400, f"unknown model {model!r}; this server has {', '.join(names)} "
                        f"({', '.join(OPENAI_MODEL_NAMES)} are its default profile, {default})",
                   param="model", code="model_not_found")


def model_list(profiles: tuple[str, ...], default: str, created: int) -> dict[str, Any]:
    """The body of ``GET /v1/models``: the default profile first, the other profiles, then
    OpenAI's names, each with the ``profile`` it runs on."""
    ordered = [default, *(p for p in profiles if p != default)]
    entries = [(name, name) for name in ordered] + [(name, default) for name in OPENAI_MODEL_NAMES]
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": created, "owned_by": "seqopt", "profile": profile}
        for name, profile in entries]}


def sse_event(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as JSON.

    >>> sse_event({"type": "speech.audio.done"})
    b'data: {"type": "speech.audio.done"}\\n\\n'
    """
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def sse_audio_delta(audio: bytes) -> bytes:
    """A ``speech.audio.delta`` event: a piece of the encoded audio, base64."""
    return sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode("ascii")})


def sse_audio_done(input_tokens: int, output_tokens: int) -> bytes:
    """The ``speech.audio.done`` event ending a stream: text tokens in, speech tokens out."""
    return sse_event({"type": "speech.audio.done", "usage": {
        "input_tokens": input_tokens, "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens}})


def sse_error(message: str, *, type: str = SERVER_ERROR) -> bytes:
    """An ``error`` event: the stream failed after it started."""
    return sse_event({"type": "error", "error": error_body(message, type=type)["error"]})


__all__ = ["ApiError", "DEFAULT_VOICE", "ModelChoice", "OPENAI_MODEL_NAMES", "SpeechRequest", "choose_profile",
           "error_body", "model_list", "parse_speech_request", "sse_audio_delta", "sse_audio_done", "sse_error",
           "sse_event"]
