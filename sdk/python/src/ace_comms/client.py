"""The asynchronous client: :class:`AsyncClient`, one method per route of ``/api/v1`` (over
``httpx``) plus the WebSocket (:meth:`AsyncClient.connect`, :meth:`AsyncClient.subscribe`,
:meth:`AsyncClient.request`).

Credentials: ``api_key`` (sent as ``X-ACE-API-Key``) or ``token`` (a bearer JWT), else the
``ACE_API_KEY`` / ``ACE_TOKEN`` variables; the server URL from ``ACE_SERVER`` when not given
(default ``http://127.0.0.1:8500``). Every refusal raises
:class:`~ace_comms.errors.ApiError` with the server's stable ``code``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx

from .envelope import ENV_API_KEY, ENV_SERVER, ENV_TOKEN, Envelope, env_default
from .errors import ApiError, TransportError, VerificationError
from .ledger import (
    VerifiedInclusion,
    verify_checkpoint,
    verify_consistency,
    verify_entry_in_checkpoint,
)
from .models import (
    AckResult,
    Approval,
    BatchResult,
    Decided,
    Delivery,
    PublishResult,
    publish_result,
)
from .ws import Subscription, WsConnection

DEFAULT_SERVER = "http://127.0.0.1:8500"


class AsyncClient:
    """A client of one ACE::COMMS server. Use ``async with AsyncClient(...) as client`` or call
    :meth:`aclose`. One WebSocket is opened on first use of :meth:`subscribe`,
    :meth:`consume` or :meth:`request` and shared by them; :meth:`connect` opens another."""

    def __init__(
        self,
        server: str | None = None,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        verify: bool | str = True,
    ) -> None:
        self.server = (server or env_default(ENV_SERVER) or DEFAULT_SERVER).rstrip("/")
        if "://" not in self.server:
            self.server = f"http://{self.server}"
        api_key = api_key or (None if token else env_default(ENV_API_KEY))
        token = token or (None if api_key else env_default(ENV_TOKEN))
        self._headers: dict[str, str] = {}
        if api_key:
            self._headers["X-ACE-API-Key"] = api_key
        elif token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._verify = verify
        self._http = httpx.AsyncClient(
            base_url=self.server, headers=self._headers, timeout=timeout, verify=verify
        )
        self._ws: WsConnection | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the shared WebSocket and the HTTP connections."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        await self._http.aclose()

    # ---- HTTP ---------------------------------------------------------------------------

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise TransportError(f"{method} {self.server}{path}: {err}") from err
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"error": {"code": "INTERNAL", "message": response.text[:500]}}
            raise ApiError.from_body(body, response.status_code)
        if not response.content:
            return None
        return response.json()

    # ---- messages -----------------------------------------------------------------------

    async def publish(self, envelope: Envelope) -> PublishResult:
        """Publishes one envelope (``POST /api/v1/messages``): :class:`~ace_comms.models.Accepted`
        with its stream and sequence, or :class:`~ace_comms.models.Pending` when it is held
        for approval."""
        body = await self._send("POST", "/api/v1/messages", json=envelope.to_wire())
        return publish_result(body)

    async def publish_batch(self, envelopes: list[Envelope]) -> BatchResult:
        """Publishes many (``POST /api/v1/messages/batch``), one result each in order; a
        refused item is in its result, not an exception."""
        body = await self._send(
            "POST", "/api/v1/messages/batch", json=[e.to_wire() for e in envelopes]
        )
        return BatchResult.of(body)

    async def get_message(self, stream: str, seq: int) -> dict[str, Any]:
        """One stored message ``{seq, stored_at, envelope}``."""
        body: dict[str, Any] = await self._send("GET", f"/api/v1/streams/{_p(stream)}/messages/{seq}")
        body["envelope"] = Envelope.from_wire(body["envelope"])
        return body

    async def get_message_cloudevent(self, stream: str, seq: int) -> dict[str, Any]:
        """One stored message as the server renders it: a structured CloudEvent."""
        body: dict[str, Any] = await self._send(
            "GET",
            f"/api/v1/streams/{_p(stream)}/messages/{seq}",
            headers={"Accept": "application/cloudevents+json"},
        )
        return body

    # ---- streams and consumers ----------------------------------------------------------

    async def list_streams(self) -> list[dict[str, Any]]:
        """Every stream's info (configuration, counts, state)."""
        body = await self._send("GET", "/api/v1/streams")
        streams: list[dict[str, Any]] = body["streams"]
        return streams

    async def get_stream(self, name: str) -> dict[str, Any]:
        """One stream's info."""
        info: dict[str, Any] = await self._send("GET", f"/api/v1/streams/{_p(name)}")
        return info

    async def add_stream(self, name: str, subjects: list[str], **config: Any) -> dict[str, Any]:
        """Creates a stream over ``subjects`` (other keys of the stream configuration by name:
        ``max_msgs``, ``max_age`` in ms, ``dead_letter``...)."""
        body = {"name": name, "subjects": subjects, **config}
        info: dict[str, Any] = await self._send("POST", "/api/v1/streams", json=body)
        return info

    async def delete_stream(self, name: str) -> None:
        """Deletes a stream."""
        await self._send("DELETE", f"/api/v1/streams/{_p(name)}")

    async def add_consumer(self, stream: str, name: str, **config: Any) -> dict[str, Any]:
        """Creates a durable consumer of ``stream`` (``deliver``, ``ack_wait`` ms,
        ``max_deliver``, ``backoff``, ``filter``...)."""
        body = {"name": name, **config}
        info: dict[str, Any] = await self._send(
            "POST", f"/api/v1/streams/{_p(stream)}/consumers", json=body
        )
        return info

    async def get_consumer(self, stream: str, name: str) -> dict[str, Any]:
        """One consumer's info."""
        info: dict[str, Any] = await self._send("GET", _consumer(stream, name))
        return info

    async def list_consumers(self, stream: str) -> list[dict[str, Any]]:
        """The consumers of a stream."""
        body = await self._send("GET", f"/api/v1/streams/{_p(stream)}/consumers")
        consumers: list[dict[str, Any]] = body["consumers"]
        return consumers

    async def delete_consumer(self, stream: str, name: str) -> None:
        """Deletes a consumer."""
        await self._send("DELETE", _consumer(stream, name))

    async def fetch(
        self, stream: str, consumer: str, batch: int = 1, expires_ms: int = 1000
    ) -> list[Delivery]:
        """Pulls up to ``batch`` messages, waiting at most ``expires_ms`` for the first."""
        body = await self._send(
            "POST",
            f"{_consumer(stream, consumer)}/fetch",
            json={"batch": batch, "expires_ms": expires_ms},
        )
        return [Delivery.model_validate(m) for m in body["messages"]]

    async def ack(self, stream: str, consumer: str, seqs: list[int] | int) -> AckResult:
        """Acknowledges deliveries."""
        return await self._settle("ack", stream, consumer, seqs, {})

    async def nak(
        self, stream: str, consumer: str, seqs: list[int] | int, delay_ms: int | None = None
    ) -> AckResult:
        """Asks for a redelivery after ``delay_ms`` (the consumer's backoff when ``None``)."""
        extra = {} if delay_ms is None else {"delay_ms": delay_ms}
        return await self._settle("nak", stream, consumer, seqs, extra)

    async def term(
        self, stream: str, consumer: str, seqs: list[int] | int, reason: str | None = None
    ) -> AckResult:
        """Gives deliveries up: they move to the stream's dead letters with ``reason``."""
        extra = {} if reason is None else {"reason": reason}
        return await self._settle("term", stream, consumer, seqs, extra)

    async def _settle(
        self, verb: str, stream: str, consumer: str, seqs: list[int] | int, extra: dict[str, Any]
    ) -> AckResult:
        seq_list = [seqs] if isinstance(seqs, int) else list(seqs)
        body = await self._send(
            "POST", f"{_consumer(stream, consumer)}/{verb}", json={"seqs": seq_list, **extra}
        )
        return AckResult.model_validate(body)

    # ---- approvals ----------------------------------------------------------------------

    async def list_approvals(self, status: str | None = None) -> list[Approval]:
        """Held messages: pending by default; ``approved``, ``rejected``, ``expired``, ``all``."""
        params = {"status": status} if status else None
        body = await self._send("GET", "/api/v1/approvals", params=params)
        return [Approval.model_validate(a) for a in body["approvals"]]

    async def get_approval(self, approval_id: str) -> Approval:
        """One approval and its status."""
        body = await self._send("GET", f"/api/v1/approvals/{_p(approval_id)}")
        return Approval.model_validate(body)

    async def decide(self, approval_id: str, decision: str, comment: str | None = None) -> Decided:
        """Decides a pending approval (``approve`` or ``reject``; the approver role only)."""
        payload: dict[str, Any] = {"decision": decision}
        if comment is not None:
            payload["comment"] = comment
        body = await self._send("POST", f"/api/v1/approval/{_p(approval_id)}", json=payload)
        return Decided.model_validate(body)

    async def approve(self, approval_id: str, comment: str | None = None) -> Decided:
        """Approves: the held message is published with its ``approval_id``."""
        return await self.decide(approval_id, "approve", comment)

    async def reject(self, approval_id: str, comment: str | None = None) -> Decided:
        """Rejects: the held message goes to the dead letters, its requester is told."""
        return await self.decide(approval_id, "reject", comment)

    # ---- agents -------------------------------------------------------------------------

    async def list_agents(self) -> list[dict[str, Any]]:
        """The agents present now."""
        body = await self._send("GET", "/api/v1/agents")
        agents: list[dict[str, Any]] = body["agents"]
        return agents

    async def heartbeat(self, agent_id: str, **presence: Any) -> dict[str, Any]:
        """Announces ``agent_id`` as present (``capabilities``, ``ttl_ms``, ``meta``...)."""
        body: dict[str, Any] = await self._send(
            "POST", f"/api/v1/agents/{_p(agent_id)}/heartbeat", json=presence
        )
        return body

    # ---- sessions -----------------------------------------------------------------------

    async def get_session(self, session_id: str) -> dict[str, Any]:
        """A session ``{id, version, data, updated_at, owner}`` (its owner or an admin only)."""
        session: dict[str, Any] = await self._send("GET", f"/api/v1/sessions/{_p(session_id)}")
        return session

    async def put_session(
        self, session_id: str, data: Any, *, version: int | None = None, create: bool = False
    ) -> dict[str, Any]:
        """Writes a session's ``data``: ``version`` replaces only that version (``If-Match``;
        another one raises ``PRECONDITION_FAILED`` with ``details.current_version``), ``create``
        only creates (``If-None-Match: *``); neither creates, or refuses an existing one with
        ``PRECONDITION_REQUIRED`` rather than overwrite it blindly."""
        if version is not None and create:
            raise ValueError("give `version` (replace) or `create`, not both")
        headers = {}
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        elif create:
            headers["If-None-Match"] = "*"
        session: dict[str, Any] = await self._send(
            "PUT", f"/api/v1/sessions/{_p(session_id)}", json={"data": data}, headers=headers
        )
        return session

    # ---- the ledger ---------------------------------------------------------------------

    async def ledger_key(self) -> dict[str, Any]:
        """The Ed25519 key checkpoints are signed with ``{algorithm, key_id, public_key}``."""
        key: dict[str, Any] = await self._send("GET", "/api/v1/ledger/key")
        return key

    async def ledger_checkpoint(self, public_key: str | None = None) -> dict[str, Any]:
        """The latest signed checkpoint, once its signature verifies here against
        ``public_key`` (hex; pin it where you can), else against the key the server serves.
        Raises :class:`~ace_comms.errors.VerificationError` when it does not verify."""
        key = public_key or (await self.ledger_key())["public_key"]
        checkpoint: dict[str, Any] = await self._send("GET", "/api/v1/ledger/checkpoint")
        verify_checkpoint(checkpoint, key)
        return checkpoint

    async def ledger_entries(
        self,
        *,
        kind: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """One page of ledger entries ``{entries, next_after}``, oldest first."""
        params = {
            k: v
            for k, v in {
                "kind": kind, "since": since, "until": until, "after": after, "limit": limit
            }.items()
            if v is not None
        }  # fmt: skip
        page: dict[str, Any] = await self._send("GET", "/api/v1/ledger/entries", params=params)
        return page

    async def ledger_entry(self, seq: int) -> dict[str, Any]:
        """Ledger entry ``seq``."""
        page = await self.ledger_entries(after=seq - 1 if seq > 0 else None, limit=1)
        entries = page["entries"]
        if not entries or entries[0]["seq"] != seq:
            raise VerificationError(f"the server lists no ledger entry {seq}")
        entry: dict[str, Any] = entries[0]
        return entry

    async def prove_inclusion(self, seq: int, public_key: str | None = None) -> VerifiedInclusion:
        """Proves entry ``seq`` is in the latest signed checkpoint, checked here: the
        checkpoint's Ed25519 signature, the entry's leaf hash computed from its content, and
        the RFC 6962 audit path to the signed root. Raises
        :class:`~ace_comms.errors.VerificationError` when anything does not verify."""
        checkpoint = await self.ledger_checkpoint(public_key)
        if seq >= checkpoint["size"]:
            raise VerificationError(
                f"entry {seq} is not covered yet by the checkpoint of size {checkpoint['size']}"
            )
        proof = await self._send(
            "GET",
            f"/api/v1/ledger/proof/inclusion/{seq}",
            params={"size": checkpoint["size"]},
        )
        entry = await self.ledger_entry(seq)
        return verify_entry_in_checkpoint(entry, proof, checkpoint)

    async def prove_consistency(
        self, older: dict[str, Any], public_key: str | None = None
    ) -> dict[str, Any]:
        """Proves the latest signed checkpoint extends ``older`` (a checkpoint kept from
        before, e.g. by :meth:`ledger_checkpoint`): both signatures verified here, then the RFC
        6962 consistency proof between their roots. Returns the latest checkpoint; raises
        :class:`~ace_comms.errors.VerificationError` when the ledger was rolled back or
        rewritten since ``older``."""
        key = public_key or (await self.ledger_key())["public_key"]
        verify_checkpoint(older, key)
        latest = await self.ledger_checkpoint(key)
        if latest["size"] < older["size"]:
            raise VerificationError(
                f"rolled back: the checkpoint covers {older['size']} entries, the ledger now "
                f"{latest['size']}"
            )
        proof = await self._send(
            "GET",
            "/api/v1/ledger/proof/consistency",
            params={"from": older["size"], "to": latest["size"]},
        )
        verify_consistency(
            older["size"],
            latest["size"],
            bytes.fromhex(older["root_hash"]),
            bytes.fromhex(latest["root_hash"]),
            [bytes.fromhex(node) for node in proof["path"]],
        )
        return latest

    # ---- the WebSocket ------------------------------------------------------------------

    def ws_url(self) -> str:
        """The URL of ``/ws`` (``ws://`` or ``wss://``)."""
        scheme, rest = self.server.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"

    async def connect(self) -> WsConnection:
        """Opens a new WebSocket with this client's credentials."""
        return await WsConnection.open(self.ws_url(), self._headers, self.timeout, self._verify)

    async def _shared(self) -> WsConnection:
        if self._ws is None or self._ws.close_status is not None:
            self._ws = await self.connect()
        return self._ws

    async def subscribe(self, pattern: str, queue: str | None = None) -> Subscription:
        """A live subscription on the shared WebSocket (``async for message in sub``)."""
        return await (await self._shared()).subscribe(pattern, queue)

    async def consume(self, stream: str, consumer: str) -> Subscription:
        """Push deliveries of a durable consumer on the shared WebSocket."""
        return await (await self._shared()).consume(stream, consumer)

    async def request(self, envelope: Envelope, timeout: float | None = None) -> Envelope:
        """Request/reply on the shared WebSocket: the first reply within ``timeout`` seconds."""
        return await (await self._shared()).request(envelope, timeout)

    @asynccontextmanager
    async def subscription(self, pattern: str, queue: str | None = None) -> AsyncIterator[Subscription]:
        """``async with client.subscription(pattern) as sub``: unsubscribes on the way out."""
        sub = await self.subscribe(pattern, queue)
        async with sub:
            yield sub


def _p(segment: str) -> str:
    return quote(segment, safe="")


def _consumer(stream: str, consumer: str) -> str:
    return f"/api/v1/streams/{_p(stream)}/consumers/{_p(consumer)}"
