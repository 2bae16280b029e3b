"""The synchronous client: :class:`Client`, the same methods as
:class:`~ace_comms.client.AsyncClient` without ``await``.

It runs one :class:`~ace_comms.client.AsyncClient` on an event loop of its own, in a daemon
thread, and waits for each call there — so it works the same from a script, from a thread, or
from code that already runs an event loop of its own (a notebook). Subscriptions are plain
iterators.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from .client import AsyncClient
from .envelope import Envelope
from .ledger import VerifiedInclusion
from .models import AckResult, Approval, BatchResult, Decided, Delivery, PublishResult
from .ws import Message
from .ws import Subscription as AsyncSubscription

T = TypeVar("T")


class _Loop:
    """An event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ace-comms", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class Subscription:
    """The messages of one subscription as an iterator (``for message in sub``)."""

    def __init__(self, loop: _Loop, inner: AsyncSubscription) -> None:
        self._loop = loop
        self._inner = inner
        self.sid = inner.sid

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        try:
            return self._loop.run(self._inner.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def next(self, timeout: float | None = None) -> Message:
        """The next message, waiting at most ``timeout`` seconds (``TimeoutError``)."""
        return self._loop.run(self._inner.next(timeout))

    def ack(self, message: Message) -> None:
        """Acknowledges a consumer delivery."""
        self._loop.run(message.ack())

    def nak(self, message: Message, delay_ms: int | None = None) -> None:
        """Asks for a redelivery."""
        self._loop.run(message.nak(delay_ms))

    def term(self, message: Message, reason: str | None = None) -> None:
        """Gives a delivery up (dead letters)."""
        self._loop.run(message.term(reason))

    def reply(self, message: Message, payload: Any, **fields: Any) -> PublishResult:
        """Answers a request on its ``reply_to``."""
        return self._loop.run(message.reply(payload, **fields))

    def unsubscribe(self) -> None:
        """Ends the subscription."""
        self._loop.run(self._inner.unsubscribe())

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._inner._connection.close_status is None:
            self.unsubscribe()


class Client:
    """A synchronous client; see :class:`~ace_comms.client.AsyncClient` for every method and
    argument. Use ``with Client(...) as client`` or call :meth:`close`."""

    def __init__(self, server: str | None = None, **options: Any) -> None:
        self._loop = _Loop()
        self._async = self._loop.run(_make(server, options))
        self.server = self._async.server

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections and stops the client's thread."""
        try:
            self._loop.run(self._async.aclose())
        finally:
            self._loop.stop()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coroutine)

    def publish(self, envelope: Envelope) -> PublishResult:
        """Publishes one envelope."""
        return self._run(self._async.publish(envelope))

    def publish_batch(self, envelopes: list[Envelope]) -> BatchResult:
        """Publishes many, one result each."""
        return self._run(self._async.publish_batch(envelopes))

    def get_message(self, stream: str, seq: int) -> dict[str, Any]:
        """One stored message."""
        return self._run(self._async.get_message(stream, seq))

    def list_streams(self) -> list[dict[str, Any]]:
        """Every stream's info."""
        return self._run(self._async.list_streams())

    def get_stream(self, name: str) -> dict[str, Any]:
        """One stream's info."""
        return self._run(self._async.get_stream(name))

    def add_stream(self, name: str, subjects: list[str], **config: Any) -> dict[str, Any]:
        """Creates a stream."""
        return self._run(self._async.add_stream(name, subjects, **config))

    def delete_stream(self, name: str) -> None:
        """Deletes a stream."""
        self._run(self._async.delete_stream(name))

    def add_consumer(self, stream: str, name: str, **config: Any) -> dict[str, Any]:
        """Creates a durable consumer."""
        return self._run(self._async.add_consumer(stream, name, **config))

    def list_consumers(self, stream: str) -> list[dict[str, Any]]:
        """The consumers of a stream."""
        return self._run(self._async.list_consumers(stream))

    def fetch(
        self, stream: str, consumer: str, batch: int = 1, expires_ms: int = 1000
    ) -> list[Delivery]:
        """Pulls up to ``batch`` messages."""
        return self._run(self._async.fetch(stream, consumer, batch, expires_ms))

    def ack(self, stream: str, consumer: str, seqs: list[int] | int) -> AckResult:
        """Acknowledges deliveries."""
        return self._run(self._async.ack(stream, consumer, seqs))

    def nak(
        self, stream: str, consumer: str, seqs: list[int] | int, delay_ms: int | None = None
    ) -> AckResult:
        """Asks for redeliveries."""
        return self._run(self._async.nak(stream, consumer, seqs, delay_ms))

    def term(
        self, stream: str, consumer: str, seqs: list[int] | int, reason: str | None = None
    ) -> AckResult:
        """Gives deliveries up (dead letters)."""
        return self._run(self._async.term(stream, consumer, seqs, reason))

    def list_approvals(self, status: str | None = None) -> list[Approval]:
        """Held messages."""
        return self._run(self._async.list_approvals(status))

    def get_approval(self, approval_id: str) -> Approval:
        """One approval."""
        return self._run(self._async.get_approval(approval_id))

    def approve(self, approval_id: str, comment: str | None = None) -> Decided:
        """Approves a held message."""
        return self._run(self._async.approve(approval_id, comment))

    def reject(self, approval_id: str, comment: str | None = None) -> Decided:
        """Rejects a held message."""
        return self._run(self._async.reject(approval_id, comment))

    def list_agents(self) -> list[dict[str, Any]]:
        """The agents present now."""
        return self._run(self._async.list_agents())

    def heartbeat(self, agent_id: str, **presence: Any) -> dict[str, Any]:
        """Announces an agent as present."""
        return self._run(self._async.heartbeat(agent_id, **presence))

    def ledger_checkpoint(self, public_key: str | None = None) -> dict[str, Any]:
        """The latest checkpoint, its signature verified here."""
        return self._run(self._async.ledger_checkpoint(public_key))

    def ledger_entries(self, **query: Any) -> dict[str, Any]:
        """One page of ledger entries."""
        return self._run(self._async.ledger_entries(**query))

    def prove_inclusion(self, seq: int, public_key: str | None = None) -> VerifiedInclusion:
        """Entry ``seq`` proven, here, to be in the latest signed checkpoint."""
        return self._run(self._async.prove_inclusion(seq, public_key))

    def prove_consistency(self, older: dict[str, Any], public_key: str | None = None) -> dict[str, Any]:
        """The latest signed checkpoint, proven here to extend ``older``."""
        return self._run(self._async.prove_consistency(older, public_key))

    def get_session(self, session_id: str) -> dict[str, Any]:
        """A session."""
        return self._run(self._async.get_session(session_id))

    def put_session(
        self, session_id: str, data: Any, *, version: int | None = None, create: bool = False
    ) -> dict[str, Any]:
        """Writes a session (``version``: only over that version; ``create``: only new)."""
        return self._run(self._async.put_session(session_id, data, version=version, create=create))

    def subscribe(self, pattern: str, queue: str | None = None) -> Subscription:
        """A live subscription, as an iterator."""
        return Subscription(self._loop, self._run(self._async.subscribe(pattern, queue)))

    def consume(self, stream: str, consumer: str) -> Subscription:
        """Push deliveries of a durable consumer, as an iterator."""
        return Subscription(self._loop, self._run(self._async.consume(stream, consumer)))

    def request(self, envelope: Envelope, timeout: float | None = None) -> Envelope:
        """Request/reply: the first reply within ``timeout`` seconds."""
        return self._run(self._async.request(envelope, timeout))


async def _make(server: str | None, options: dict[str, Any]) -> AsyncClient:
    # built on the client's own loop, where its connections will live
    return AsyncClient(server, **options)
