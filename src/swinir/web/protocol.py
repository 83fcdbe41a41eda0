"""uvicorn's h11 connection protocol with the two things a server facing odd clients needs.

* **Half-closed clients.** A client may send its request and then shut down its sending side
  (``shutdown(SHUT_WR)``, ``curl`` with some proxies, many load tools). uvicorn's protocol lets asyncio
  close the whole connection on that EOF, so the answer is never sent. Here a complete request still
  gets its answer, and the connection is closed after it.
* **Request-head timeout.** uvicorn arms its keep-alive timer only after a response, and any byte
  resets it; a connection that never sends a full request head (idle, or one byte at a time) would
  be held forever. Here every connection must deliver a complete request head within
  ``header_timeout`` of connecting or of its previous answer.

Malformed requests (``Content-Length: -1``) get uvicorn's 400, and requests over the connection
limit (``--max-connections``) its 503, both as one-line JSON like every other error.
This subclasses uvicorn's ``H11Protocol`` and so leans on its internals (``cycle``, ``conn``,
``handle_events``); ``tests/test_web_abuse.py`` fails if a uvicorn release changes them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http import h11_impl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState


class GuardedH11Protocol(H11Protocol):
    header_timeout: float = 10.0  # set on the subclass made by :func:`protocol_class`

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None
        self._requests_started = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request head arrived and a new cycle began
            self._requests_started += 1

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def eof_received(self) -> bool:
        """Keep the connection open to answer a request that is complete; else let it close."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and self.conn.their_state is h11.DONE:
            cycle.keep_alive = False  # close once the answer is out
            return True
        return False

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse (e.g. ``Content-Length: -1``), as JSON."""
        body = json.dumps({"error": f"malformed HTTP request ({msg.rstrip('.').lower()})"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(
                self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request"))
            )
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # too broken to answer in HTTP at all
            pass
        self.transport.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        seen = self._requests_started
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timeout, seen)

    def _head_timeout(self, seen: int) -> None:
        self._head_timer = None
        if self._requests_started != seen or self.transport.is_closing():
            return  # a request arrived in time; its body has a deadline of its own (the guard's)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


async def _over_the_connection_limit(scope: Any, receive: Any, send: Any) -> None:
    """What uvicorn answers when ``limit_concurrency`` is reached (its own is plain text)."""
    body = json.dumps(
        {"error": "the server has as many open connections as it allows (--max-connections); try again"}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def protocol_class(header_timeout: float) -> type[GuardedH11Protocol]:
    # uvicorn's h11 protocol looks its over-the-limit app up as a module global when a request
    # arrives; the server process runs only our protocol, so replacing it there is safe.
    h11_impl.service_unavailable = _over_the_connection_limit  # type: ignore[attr-defined]
    return type("SwinirH11Protocol", (GuardedH11Protocol,), {"header_timeout": header_timeout})
