"""``swinir web``: a local upscaling studio served over HTTP.

The pieces, each in a module named for what it does:

* :mod:`.settings` - typed limits and options (:class:`WebSettings`, :class:`ModelChoice`);
* :mod:`.catalog` - the models this server offers, and the loaded :class:`swinir.Upscaler` s;
* :mod:`.jobs` - the job queue, its single worker thread and the result folder (size cap, expiry);
* :mod:`.guard` - ASGI middleware: bounded request bodies, upload timeouts, token and Host checks;
* :mod:`.protocol` - the uvicorn connection protocol with header timeouts and half-close handling;
* :mod:`.app` - the FastAPI application: HTTP API, static page, offline API docs;
* :mod:`.server` - listening socket, uvicorn, printing the address and cleaning up on exit.

The stack is FastAPI on Starlette, served by uvicorn: the OpenAPI document comes from the typed
endpoint signatures (so ``/docs`` cannot drift from the code), Starlette streams multipart uploads to
disk instead of memory, and uvicorn's asyncio server holds idle connections without a thread each.
"""

from __future__ import annotations

from .settings import ModelChoice, WebSettings

__all__ = ["ModelChoice", "WebSettings"]
