"""The ``/ws`` WebSocket from the client side: live subscriptions (async iterators), durable
consumer push with ack/nak/term, publish (single and batch) and request/reply, over one
socket (subprotocol ``ace.comms.v1``, JSON frames of :mod:`ace_comms.models`).

One reader task routes each ``ok``/``error`` frame to the call waiting on its ``id`` and each
``message`` frame to the :class:`Subscription` of its ``sid``. A subscription buffers
:data:`SUBSCRIPTION_BUFFER` messages; when its owner reads slower than they arrive the reader
waits, the socket is no longer read, and the server eventually closes the connection with 4008
(slow consumer) — every subscription then raises :class:`~ace_comms.errors.ConnectionClosed`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed as WsClosed
from websockets.exceptions import InvalidStatus

from .envelope import Envelope, create_envelope
from .errors import ApiError, ConnectionClosed, RequestTimeout, TransportError
from .models import (
    AckFrame,
    BatchResult,
    MessageFrame,
    PublishBatchFrame,
    PublishFrame,
    PublishResult,
    SubscribeFrame,
    UnsubscribeFrame,
    publish_result,
)

#: The subprotocol of the frames.
PROTOCOL = "ace.comms.v1"
#: Messages a subscription holds before the connection's reader waits for its owner.
SUBSCRIPTION_BUFFER = 1024
#: Prefix of request inboxes (one more token names the request).
INBOX_PREFIX = "ace.comms.system.inbox."
#: The header a request carries its reply subject in.
REPLY_TO_HEADER = "reply_to"

_END = object()


class WsConnection:
    """One WebSocket to the server. Use it as ``async with await client.connect() as ws``, or
    call :meth:`close`."""

    def __init__(self, socket: ClientConnection, timeout: float) -> None:
        self._socket = socket
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._routes: dict[str, asyncio.Queue[Any]] = {}
        self._ids = itertools.count(1)
        self._closed: tuple[int, str] | None = None
        self._reader = asyncio.create_task(self._read_loop())

    @classmethod
    async def open(
        cls, url: str, headers: dict[str, str], timeout: float, verify: bool | str = True
    ) -> WsConnection:
        """Connects to ``url`` (``ws://`` or ``wss://``) with ``headers`` (the credentials);
        ``verify`` is as in ``httpx``: ``True`` the system's CAs, a path a CA bundle, ``False``
        no check of the server's certificate."""
        tls: ssl.SSLContext | None = None
        if url.startswith("wss://"):
            tls = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
        try:
            socket = await connect(
                url,
                ssl=tls,
                additional_headers=headers,
                subprotocols=[PROTOCOL],  # type: ignore[list-item]
                open_timeout=timeout,
                max_size=None,
            )
        except InvalidStatus as err:
            body = err.response.body or b""
            try:
                raise ApiError.from_body(json.loads(body), err.response.status_code) from None
            except ValueError:
                raise TransportError(f"connect {url}: {err}") from None
        except (OSError, TimeoutError) as err:
            raise TransportError(f"connect {url}: {err}") from err
        return cls(socket, timeout)

    async def __aenter__(self) -> WsConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def close_status(self) -> tuple[int, str] | None:
        """The close code and reason once the connection is over (``None`` while open)."""
        return self._closed

    async def close(self) -> None:
        """Closes the connection with 1000 and waits for the server's answer."""
        await self._socket.close(1000, "client closed")
        await asyncio.gather(self._reader, return_exceptions=True)

    # ---- subscriptions ------------------------------------------------------------------

    async def subscribe(self, pattern: str, queue: str | None = None) -> Subscription:
        """A live subscription to ``pattern`` (core pub/sub: nothing stored); with a ``queue``
        group each message goes to one member."""
        sid = f"s{next(self._ids)}"
        return await self._open(SubscribeFrame(sid=sid, pattern=pattern, queue=queue))

    async def consume(self, stream: str, consumer: str) -> Subscription:
        """Push deliveries of the durable ``consumer`` of ``stream``: each :class:`Message`
        carries its sequence and delivery count and waits for ``ack``/``nak``/``term``."""
        sid = f"c{next(self._ids)}"
        return await self._open(SubscribeFrame(sid=sid, stream=stream, consumer=consumer))

    async def _open(self, frame: SubscribeFrame) -> Subscription:
        # the route first: the server may push before its `ok` arrives
        queue: asyncio.Queue[Any] = asyncio.Queue(SUBSCRIPTION_BUFFER)
        self._routes[frame.sid] = queue
        try:
            await self._call(frame)
        except BaseException:
            self._routes.pop(frame.sid, None)
            raise
        return Subscription(self, frame.sid, queue)

    async def unsubscribe(self, sid: str) -> None:
        """Ends the subscription ``sid``."""
        self._routes.pop(sid, None)
        await self._call(UnsubscribeFrame(sid=sid))

    # ---- publishing ---------------------------------------------------------------------

    async def publish(self, envelope: Envelope) -> PublishResult:
        """Publishes ``envelope``; the answer is the publish answer of HTTP (raises
        :class:`~ace_comms.errors.ApiError` when refused)."""
        result = await self._call(PublishFrame(envelope=envelope))
        return publish_result(result or {})

    async def publish_batch(self, envelopes: list[Envelope]) -> BatchResult:
        """Publishes ``envelopes`` in one frame; one result per envelope, in order (a refused
        item does not raise)."""
        result = await self._call(PublishBatchFrame(envelopes=envelopes))
        return BatchResult.of(result or {})

    async def request(self, envelope: Envelope, timeout: float | None = None) -> Envelope:
        """Sends ``envelope`` as a request and waits up to ``timeout`` seconds for the first
        reply: subscribes to a fresh inbox, puts it in ``headers["reply_to"]``, sets
        ``correlation_id`` to the envelope id when it has none, publishes and awaits."""
        inbox = f"{INBOX_PREFIX}{uuid.uuid4().hex}"
        replies = await self.subscribe(inbox)
        request = envelope.model_copy(deep=True)
        request.headers[REPLY_TO_HEADER] = inbox
        if request.correlation_id is None:
            request.correlation_id = request.id
        try:
            await self.publish(request)
            message = await asyncio.wait_for(replies.next(), timeout or self._timeout)
        except TimeoutError:
            raise RequestTimeout(f"no reply to the request on {envelope.subject}") from None
        finally:
            if self._closed is None:
                await replies.unsubscribe()
        return message.envelope

    async def reply(self, request: Envelope, payload: Any, **fields: Any) -> PublishResult:
        """Answers ``request`` on its ``reply_to`` with a ``reply`` envelope carrying
        ``payload``, its ``correlation_id`` and ``causation_id`` set from the request."""
        reply_to = request.headers.get(REPLY_TO_HEADER)
        if not reply_to:
            raise ValueError(f"the request {request.id} names no `headers.reply_to`")
        envelope = create_envelope(
            "reply",
            reply_to,
            payload=payload,
            correlation_id=request.correlation_id or request.id,
            causation_id=request.id,
            **fields,
        )
        return await self.publish(envelope)

    # ---- consumer deliveries ------------------------------------------------------------

    async def ack(self, sid: str, seq: int) -> None:
        """Acknowledges delivery ``seq`` of the consumer subscription ``sid``."""
        await self._call(AckFrame(type="ack", sid=sid, seq=seq))

    async def nak(self, sid: str, seq: int, delay_ms: int | None = None) -> None:
        """Redeliver ``seq`` after ``delay_ms`` (the consumer's backoff when ``None``)."""
        await self._call(AckFrame(type="nak", sid=sid, seq=seq, delay_ms=delay_ms))

    async def term(self, sid: str, seq: int, reason: str | None = None) -> None:
        """Give up ``seq``: it moves to the dead letters with ``reason``."""
        await self._call(AckFrame(type="term", sid=sid, seq=seq, reason=reason))

    # ---- the protocol -------------------------------------------------------------------

    async def _call(self, frame: Any) -> Any:
        if self._closed is not None:
            raise ConnectionClosed(*self._closed)
        frame.id = f"f{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[frame.id] = future
        try:
            await self._socket.send(json.dumps(frame.to_wire(), separators=(",", ":")))
            return await asyncio.wait_for(future, self._timeout)
        except WsClosed:
            raise self._closed_error() from None
        except TimeoutError:
            raise RequestTimeout(f"no answer to the `{frame.type}` frame") from None
        finally:
            self._pending.pop(frame.id, None)

    def _closed_error(self) -> ConnectionClosed:
        code, reason = self._closed or (1006, "the connection dropped")
        return ConnectionClosed(code, reason)

    async def _read_loop(self) -> None:
        try:
            async for text in self._socket:
                await self._route(json.loads(text))
        except WsClosed:
            pass
        finally:
            code = self._socket.close_code
            reason = self._socket.close_reason or ""
            self._closed = (code, reason) if code is not None else (1006, "the connection dropped")
            error = self._closed_error()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            for queue in self._routes.values():
                _offer_end(queue, error)

    async def _route(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "message":
            queue = self._routes.get(frame.get("sid", ""))
            if queue is not None:
                await queue.put(Message(self, MessageFrame.model_validate(frame)))
            return
        future = self._pending.get(frame.get("id") or "")
        if future is None or future.done():
            return
        if kind == "ok":
            future.set_result(frame.get("result"))
        elif kind == "error":
            future.set_exception(ApiError.from_body(frame))


def _offer_end(queue: asyncio.Queue[Any], error: ConnectionClosed) -> None:
    """Tells a subscription's reader that the connection is over, even when its buffer is
    full (the oldest message makes room: the connection is gone anyway)."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(error)


class Message:
    """A message of a subscription. For a consumer delivery, ``stream``, ``seq`` and
    ``delivery`` are set and :meth:`ack`, :meth:`nak` and :meth:`term` settle it."""

    def __init__(self, connection: WsConnection, frame: MessageFrame) -> None:
        self._connection = connection
        self.sid = frame.sid
        self.envelope: Envelope = frame.envelope
        self.stream = frame.stream
        self.seq = frame.seq
        self.delivery = frame.delivery

    def __repr__(self) -> str:
        return f"Message(sid={self.sid!r}, subject={self.envelope.subject!r}, seq={self.seq})"

    def _seq(self) -> int:
        if self.seq is None:
            raise ValueError("a live message has nothing to acknowledge")
        return self.seq

    async def ack(self) -> None:
        """Acknowledges this delivery."""
        await self._connection.ack(self.sid, self._seq())

    async def nak(self, delay_ms: int | None = None) -> None:
        """Asks for a redelivery after ``delay_ms``."""
        await self._connection.nak(self.sid, self._seq(), delay_ms)

    async def term(self, reason: str | None = None) -> None:
        """Gives this delivery up: it moves to the dead letters with ``reason``."""
        await self._connection.term(self.sid, self._seq(), reason)

    async def reply(self, payload: Any, **fields: Any) -> PublishResult:
        """Answers this message (a request) on its ``reply_to``."""
        return await self._connection.reply(self.envelope, payload, **fields)


class Subscription:
    """The messages of one subscription, as an async iterator (``async for message in sub``);
    it ends when the subscription is ended, and raises
    :class:`~ace_comms.errors.ConnectionClosed` when the connection is lost."""

    def __init__(self, connection: WsConnection, sid: str, queue: asyncio.Queue[Any]) -> None:
        self._connection = connection
        self.sid = sid
        self._queue = queue
        self._open = True

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        if not self._open and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            raise StopAsyncIteration
        if isinstance(item, ConnectionClosed):
            self._queue.put_nowait(item)  # every later read says so too
            raise item
        message: Message = item
        return message

    async def next(self, timeout: float | None = None) -> Message:
        """The next message, waiting at most ``timeout`` seconds (``TimeoutError``)."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def unsubscribe(self) -> None:
        """Ends the subscription; iteration stops after what was already received."""
        if self._open:
            self._open = False
            await self._connection.unsubscribe(self.sid)
            # the route is gone, so nothing more is queued; a reader waiting on an empty queue
            # is woken by the marker, one with a full queue reads it out and then stops
            if not self._queue.full():
                self._queue.put_nowait(_END)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._connection.close_status is None:
            await self.unsubscribe()
