"""``seqopt serve``: an OpenAI-compatible streaming speech server (see ``docs/serve.md``).

The modules, from the wire inwards:

* :mod:`.app`: the FastAPI routes (a thin front end; imports FastAPI);
* :mod:`.runner`: runs the app under uvicorn with seqopt's shutdown rules (imports uvicorn);
* :mod:`.protocol`: OpenAI's request and error shapes, model names, server-sent events;
* :mod:`.service`: the pipelines, admission control and one stream per request;
* :mod:`.voices`: the voices folder; :mod:`.settings`: the limits and security settings;
* :mod:`.audio_formats`: streaming encoders; :mod:`.metrics`: ``GET /metrics``.

Importing this package imports none of them: FastAPI, uvicorn and torch load only
when a server is built.
"""
