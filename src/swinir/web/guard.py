"""ASGI middleware in front of the app: who may ask, and how much and how slowly they may send.

* **Token.** With ``--token`` every request must carry it: ``Authorization: Bearer T``, the cookie the
  page sets, or ``?token=T`` (the address ``swinir web`` prints; it sets the cookie).
* **Host and Origin.** A server on a loopback address answers only requests addressed to a loopback
  name, so a web page elsewhere cannot reach it through DNS rebinding; a state-changing request whose
  ``Origin`` is another site is refused (a plain HTML form can post multipart data cross-site).
* **Bodies.** One bounded reader for every request body: a declared ``Content-Length`` over the limit
  is answered 413 before a byte of the body is read; a chunked or lying body is counted as it arrives
  and cut off at the limit; a body that is not complete within ``body_timeout`` gets 408. Negative or
  non-numeric lengths never get here: uvicorn's HTTP parser (h11) answers them 400.

When the guard answers, it closes the connection (``Connection: close``), hands the app a disconnect
and drops whatever the app still tries to send.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "swinir_token"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")
_BODY_METHODS = ("POST", "PUT", "PATCH")


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        body_timeout: float,
        token: str | None,
        loopback_only: bool,
        extra_hosts: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.token = token
        self.loopback_only = loopback_only
        self.allowed_hosts = {h.lower() for h in (*_LOOPBACK_NAMES, *extra_hosts)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]},{text}" if name in headers else text
        refusal = self._refuse(scope, headers)
        if refusal is not None:
            await _reply(send, *refusal)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, self._with_cookie(scope, send))
            return
        length_text = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length_text is None and not chunked:
            await _reply(send, 411, "send the upload with a Content-Length header (or chunked)")
            return
        if length_text is not None:
            # h11 has checked that this is digits only; several equal values arrive joined by ","
            length = int(length_text.split(",")[0])
            if length > self.max_body:
                await _reply(
                    send, 413, f"the upload is {length} bytes, over this server's {self.max_body}-byte limit"
                )
                return
        await self._bounded(scope, receive, send)

    def _refuse(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if self.loopback_only and name not in self.allowed_hosts:
            return 421, f"this server answers requests for localhost only, not for {host or '(no Host)'}"
        origin = headers.get("origin")
        state_changing = scope["method"] not in ("GET", "HEAD", "OPTIONS")
        if state_changing and origin and origin != "null" and origin.split("://", 1)[-1].lower() != host:
            return 403, f"cross-site request from {origin} refused"
        if self.token is not None and not self._has_token(scope, headers):
            return 401, "this server needs its token: open the address `swinir web` printed (...?token=...)"
        return None

    def _has_token(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        offered: list[str] = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        for part in headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == TOKEN_COOKIE:
                offered.append(value)
        offered += parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        return any(hmac.compare_digest(t.encode(), self.token.encode()) for t in offered)

    def _with_cookie(self, scope: Scope, send: Send) -> Send:
        """On a request that brought ``?token=``, set the cookie so the page's later requests carry it."""
        if self.token is None or b"token=" not in scope.get("query_string", b""):
            return send

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        return send_with_cookie

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = time.monotonic() + self.body_timeout
        received = 0
        body_done = False
        answered = False

        async def answer(status: int, message: str) -> Message:
            nonlocal answered
            if not answered and not started:
                await _reply(send, status, message)
            answered = True
            return {"type": "http.disconnect"}

        async def bounded_receive() -> Message:
            nonlocal received, body_done
            if answered:
                return {"type": "http.disconnect"}
            if body_done:  # after the body only a disconnect can come; no deadline for that
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return await answer(408, f"the upload was not complete within {self.body_timeout:g} s")
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    return await answer(413, f"the upload is over this server's {self.max_body}-byte limit")
                body_done = not message.get("more_body", False)
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, bounded_receive, guarded_send)


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message.splitlines()[0]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
