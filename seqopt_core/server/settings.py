"""What ``seqopt serve`` is told about where to listen, whom to serve and how much.

:class:`ServerSettings` holds everything the server's behaviour depends on except the
model (the config, profile, checkpoint and device load the pipelines; see
:mod:`seqopt_core.server.service`). ``seqopt serve``'s flags fill it; an app that runs
the server itself builds one directly. Validated by pydantic: a bad value raises a
:class:`~seqopt_core.errors.ConfigError` naming the setting and its range.

Security rules it enforces:

* The server binds to a loopback address unless an API key is set: any other host
  (``0.0.0.0``, ``::``, a LAN address, a host name) without ``api_key`` is refused.
* The key is kept as a :class:`pydantic.SecretStr` (never printed in a repr).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from ..errors import ConfigError

#: Host names that always mean this machine.
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
#: The smallest request body limit: room for any speech request's JSON but the text.
MIN_BODY_BYTES = 64 * 1024
#: The default request body limit (1 MiB), raised to hold ``max_input_chars`` if needed.
DEFAULT_BODY_BYTES = 1024 * 1024
#: The most bytes one character can take in a JSON body (a ``\\uXXXX`` escape pair: 12).
JSON_BYTES_PER_CHAR = 12


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address or name of this machine only (127.0.0.0/8, ``::1``,
    ``localhost``). ``0.0.0.0`` and ``::`` mean every interface: not loopback.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3", "example.org")]
    [True, True, True, False, False, False]
    """
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


class ServerSettings(BaseModel):
    """The server's settings (``seqopt serve``'s flags; defaults in ``docs/serve.md``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free one)")
    api_key: SecretStr | None = Field(None, description="the key clients send as Authorization: Bearer")
    voices_dir: Path | None = Field(None, description="folder of reference recordings (.wav, .flac, .mp3)")
    max_streams: int = Field(16, ge=1, le=1024, description="speech streams generated at once")
    max_queue: int = Field(32, ge=0, le=100_000,
                           description="requests that may wait for a free stream; more get 503")
    max_input_chars: int = Field(20_000, ge=1, le=10_000_000, description="longest input text, characters")
    max_body_bytes: int | None = Field(None, ge=MIN_BODY_BYTES,
                                       description="largest request body (default: 1 MiB, or enough "
                                                   "for max_input_chars)")
    shutdown_grace_seconds: float = Field(30.0, ge=0, le=3600,
                                          description="how long active streams may finish on SIGTERM")
    retry_after_seconds: int = Field(2, ge=1, le=3600, description="Retry-After of a 503")

    @model_validator(mode="after")
    def _checked(self) -> ServerSettings:
        key = self.api_key.get_secret_value() if self.api_key is not None else None
        if key is not None and not key.strip():
            raise ValueError("api_key is empty: give a key, or none to serve on loopback only")
        if key is None and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is reachable from other machines, and no API key is set: "
                "set one (seqopt serve --api-key-env VAR, with the key in $VAR) or bind to "
                "127.0.0.1")
        if self.max_body_bytes is not None and self.max_body_bytes < self.body_bytes_needed:
            raise ValueError(f"max_body_bytes {self.max_body_bytes} cannot hold an input of max_input_chars "
                             f"{self.max_input_chars} characters; give at least {self.body_bytes_needed}")
        return self

    @property
    def body_bytes_needed(self) -> int:
        """The body size an input of ``max_input_chars`` characters can take as JSON."""
        return self.max_input_chars * JSON_BYTES_PER_CHAR + MIN_BODY_BYTES

    @property
    def body_limit(self) -> int:
        """The largest request body accepted, in bytes."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return max(DEFAULT_BODY_BYTES, self.body_bytes_needed)

    @property
    def key(self) -> str | None:
        """The API key in clear (``None``: no key wanted)."""
        return self.api_key.get_secret_value() if self.api_key is not None else None

    @classmethod
    def build(cls, **values: object) -> ServerSettings:
        """Settings from ``values`` (``None`` values take the default), or a
        :class:`~seqopt_core.errors.ConfigError` that names each bad one."""
        given = {k: v for k, v in values.items() if v is not None}
        try:
            return cls(**given)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                message = err["msg"].removeprefix("Value error, ")
                lines.append(f"{where}: {message}" if where else message)
            raise ConfigError("bad server settings: " + "; ".join(lines)) from None


__all__ = ["ServerSettings", "is_loopback"]
