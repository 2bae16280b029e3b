"""The SDK against a real ``ace-comms serve`` with enforced authentication (the tour's keys;
see ``conftest.py``): publish -> subscribe, batches, request/reply answered by a Python
responder, a durable consumer with redelivery and dead letters (HTTP and WebSocket), approvals
decided by the approver only, a ledger inclusion proof verified here, the server's CloudEvent
equal to the SDK's, and every refusal as an exception carrying the server's code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ace_comms import (
    Accepted,
    ApiError,
    AsyncClient,
    Client,
    Conflict,
    ConnectionClosed,
    Forbidden,
    InvalidEnvelope,
    NotFound,
    Pending,
    RequestTimeout,
    Unauthenticated,
    VerificationError,
    create_envelope,
    to_cloudevent,
)
from ace_comms.ledger import verify_entry_in_checkpoint

DLQ_SUBJECT = "ace.comms.system.dlq.ACE_EVENTS.evt.dead_letter.v1"


@pytest.fixture
async def admin(server: Any) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.url, api_key=server.admin, timeout=10) as client:
        yield client


@pytest.fixture
async def approver(server: Any) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.url, api_key=server.approver, timeout=10) as client:
        yield client


@pytest.fixture
async def agent(server: Any) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.url, api_key=server.agent, timeout=10) as client:
        yield client


def a2a(unique: str, name: str = "hello") -> str:
    return f"ace.comms.a2a.agent.{unique}.evt.{name}.v1"


# ---- publish and subscribe --------------------------------------------------------------


async def test_given_a_live_subscription_when_an_agent_publishes_then_the_subscriber_gets_it(
    agent: AsyncClient, unique: str
) -> None:
    sub = await agent.subscribe(f"ace.comms.a2a.agent.{unique}.>")
    sent = create_envelope("event", a2a(unique), payload={"hi": 1}, name="HELLO")
    answer = await agent.publish(sent)
    assert isinstance(answer, Accepted) and not answer.held
    assert (answer.id, answer.stream, answer.duplicate) == (sent.id, "ACE_EVENTS", False)
    message = await sub.next(timeout=5)
    assert message.envelope.id == sent.id
    assert message.envelope.payload == {"hi": 1}
    assert message.envelope.source is not None and message.envelope.source.id == "planner-agent"
    again = await agent.publish(sent)
    assert isinstance(again, Accepted) and again.duplicate and again.seq == answer.seq


async def test_given_a_batch_over_http_and_websocket_when_published_then_each_item_has_its_answer(
    agent: AsyncClient, unique: str
) -> None:
    good = [create_envelope("event", a2a(unique), payload={"n": n}) for n in range(3)]
    refused = create_envelope("event", "ace.comms.http.ops.db.evt.x.v1", payload={})
    result = await agent.publish_batch([*good, refused])
    assert (result.accepted, result.refused, result.held) == (3, 1, 0)
    assert [item.status for item in result.results] == [202, 202, 202, 403]
    assert result.results[3].error is not None and result.results[3].error["code"] == "FORBIDDEN"
    seqs = [item.accepted.seq for item in result.results[:3] if item.accepted]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    async with await agent.connect() as ws:
        over_ws = await ws.publish_batch([create_envelope("event", a2a(unique), payload={"n": 9})])
        assert over_ws.accepted == 1 and over_ws.results[0].accepted is not None


async def test_given_a_subscription_when_ended_or_its_connection_closed_then_iteration_stops_or_raises(
    agent: AsyncClient, unique: str
) -> None:
    async with await agent.connect() as ws:
        sub = await ws.subscribe(f"ace.comms.a2a.agent.{unique}.>")
        for n in range(2):
            await ws.publish(create_envelope("event", a2a(unique), payload={"n": n}))
        got = [(await sub.next(timeout=5)).envelope.payload["n"] for _ in range(2)]
        assert got == [0, 1]
        await sub.unsubscribe()
        assert [m async for m in sub] == []
        other = await ws.subscribe(f"ace.comms.a2a.agent.{unique}.>")
    assert ws.close_status is not None and ws.close_status[0] == 1000
    with pytest.raises(ConnectionClosed) as closed:
        await other.next(timeout=5)
    assert closed.value.code == 1000
    with pytest.raises(ConnectionClosed):
        await ws.publish(create_envelope("event", a2a(unique), payload={}))


def test_given_the_sync_client_when_it_publishes_then_its_iterator_subscription_receives(
    server: Any, unique: str
) -> None:
    with Client(server.url, api_key=server.agent) as client:
        with client.subscribe(f"ace.comms.a2a.agent.{unique}.>") as sub:
            sent = create_envelope("event", a2a(unique), payload={"sync": True})
            answer = client.publish(sent)
            assert isinstance(answer, Accepted) and answer.stream == "ACE_EVENTS"
            first = sub.next(timeout=5)
            assert first.envelope.id == sent.id
            later = create_envelope("event", a2a(unique), payload={"n": 2})
            client.publish(later)
            assert next(iter(sub)).envelope.id == later.id, "a plain iterator too"
        assert client.list_streams() == [], "an agent sees no stream it may not read as a whole"


async def test_given_a_python_responder_when_an_agent_sends_a_request_then_its_reply_comes_back(
    agent: AsyncClient, server: Any, unique: str
) -> None:
    # Both ends are agents: the asker listens on its own inbox (a capability, no rule needed)
    # and the responder answers there (the agent role may publish on inboxes).
    subject = f"ace.comms.a2a.agent.{unique}.qry.ping.v1"
    async with AsyncClient(server.url, api_key=server.agent) as responder:
        requests = await responder.subscribe(subject)

        async def serve_one() -> None:
            request = await requests.next(timeout=5)
            await request.reply({"pong": request.envelope.payload["ping"] + 1})

        serving = asyncio.create_task(serve_one())
        question = create_envelope("query", subject, payload={"ping": 41})
        reply = await agent.request(question, timeout=5)
        await serving
    assert reply.kind == "reply"
    assert reply.payload == {"pong": 42}
    assert reply.correlation_id == question.id and reply.causation_id == question.id
    with pytest.raises(RequestTimeout):
        await agent.request(create_envelope("query", f"{subject}.nobody", payload={}), timeout=0.5)


# ---- durable consumers ------------------------------------------------------------------


async def _dead_letter_of(subscription: Any, message_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = await subscription.next(timeout=max(0.1, deadline - time.monotonic()))
        payload: dict[str, Any] = message.envelope.payload
        if payload.get("message_id") == message_id:
            return payload


async def test_given_a_consumer_when_a_delivery_is_nakked_then_unacked_then_it_is_redelivered_then_dead_lettered(
    admin: AsyncClient, unique: str
) -> None:
    consumer = f"py-{unique}"
    await admin.add_consumer(
        "ACE_EVENTS", consumer, deliver="new", ack_wait=1000, max_deliver=2,
        filter=f"ace.comms.a2a.agent.{unique}.>",
    )  # fmt: skip
    dead = await admin.subscribe(DLQ_SUBJECT)
    flaky = create_envelope("event", a2a(unique, "task_failed"), payload={"task": "t-2"})
    await admin.publish(flaky)
    first = await admin.fetch("ACE_EVENTS", consumer, batch=1, expires_ms=2000)
    assert [(d.envelope.id, d.delivery) for d in first] == [(flaky.id, 1)]
    nakked = await admin.nak("ACE_EVENTS", consumer, first[0].seq, delay_ms=0)
    assert nakked.done == [first[0].seq]
    second = await admin.fetch("ACE_EVENTS", consumer, batch=1, expires_ms=2000)
    assert [(d.envelope.id, d.delivery) for d in second] == [(flaky.id, 2)]
    # never acked: its ack wait runs out on the last allowed delivery
    letter = await _dead_letter_of(dead, flaky.id)
    assert letter["reason"] == "max_deliver"
    assert (letter["stream"], letter["consumer"], letter["deliveries"]) == ("ACE_EVENTS", consumer, 2)
    assert letter["original"]["id"] == flaky.id

    poison = create_envelope("event", a2a(unique, "poison"), payload={"bad": True})
    await admin.publish(poison)
    got = await admin.fetch("ACE_EVENTS", consumer, batch=1, expires_ms=2000)
    termed = await admin.term("ACE_EVENTS", consumer, got[0].seq, reason="cannot parse")
    assert termed.done == [got[0].seq]
    letter = await _dead_letter_of(dead, poison.id)
    assert (letter["reason"], letter["detail"]) == ("term", "cannot parse")
    with pytest.raises(NotFound, match="not pending"):
        await admin.ack("ACE_EVENTS", consumer, 10**9)


async def test_given_a_websocket_consumer_when_a_push_is_nakked_then_it_comes_again_and_an_ack_settles_it(
    admin: AsyncClient, unique: str
) -> None:
    consumer = f"push-{unique}"
    await admin.add_consumer(
        "ACE_EVENTS", consumer, deliver="new", ack_wait=30000, filter=f"ace.comms.a2a.agent.{unique}.>"
    )
    deliveries = await admin.consume("ACE_EVENTS", consumer)
    sent = create_envelope("event", a2a(unique), payload={"push": 1})
    await admin.publish(sent)
    first = await deliveries.next(timeout=5)
    assert (first.envelope.id, first.stream, first.delivery) == (sent.id, "ACE_EVENTS", 1)
    await first.nak()
    second = await deliveries.next(timeout=5)
    assert (second.seq, second.delivery) == (first.seq, 2)
    await second.ack()
    with pytest.raises(TimeoutError):
        await deliveries.next(timeout=1.5)
    info = await admin.get_consumer("ACE_EVENTS", consumer)
    assert info["config"]["name"] == consumer


# ---- approvals ----------------------------------------------------------------------------


def _risky(unique: str) -> Any:
    return create_envelope(
        "event",
        f"ace.comms.http.ops.{unique}.evt.dropped.v1",
        payload={"table": "users"},
        governance={"ehi_score": 0.95},
        headers={"ace-action": "delete"},
    )


async def test_given_a_held_message_when_the_approver_approves_then_it_is_published_with_its_approval_id(
    admin: AsyncClient, approver: AsyncClient, unique: str
) -> None:
    held = await admin.publish(_risky(unique))
    assert isinstance(held, Pending) and held.held and held.status == "pending_approval"
    pending = await admin.list_approvals()
    assert held.approval_id in [a.approval_id for a in pending]
    with pytest.raises(Forbidden) as refused:
        await admin.approve(held.approval_id)  # four eyes: only the approver role decides
    assert refused.value.code == "FORBIDDEN" and refused.value.status == 403
    decided = await approver.approve(held.approval_id, comment="backup checked")
    assert decided.approval.status == "approved" and decided.approval.comment == "backup checked"
    assert decided.accepted is not None and decided.accepted.stream == "ACE_EVENTS"
    stored = await admin.get_message("ACE_EVENTS", decided.accepted.seq)
    assert stored["envelope"].governance.approval_id == held.approval_id
    with pytest.raises(Conflict):
        await approver.approve(held.approval_id)


async def test_given_a_held_message_when_rejected_then_its_approval_says_so(
    admin: AsyncClient, approver: AsyncClient, unique: str
) -> None:
    held = await admin.publish(_risky(unique))
    assert isinstance(held, Pending)
    decided = await approver.reject(held.approval_id, comment="not on a Friday")
    assert decided.accepted is None
    again = await admin.get_approval(held.approval_id)
    assert (again.status, again.decided_by, again.comment) == ("rejected", "reviewer-bob", "not on a Friday")
    assert held.approval_id in [a.approval_id for a in await admin.list_approvals("rejected")]


# ---- the ledger -------------------------------------------------------------------------


async def _entry_of(client: AsyncClient, message_id: str) -> dict[str, Any]:
    after = None
    while True:
        page = await client.ledger_entries(kind="accepted", after=after, limit=1000)
        for entry in page["entries"]:
            if entry["message_id"] == message_id:
                return entry
        if page["next_after"] is None:
            raise AssertionError(f"no accepted entry for {message_id}")
        after = page["next_after"]


async def test_given_a_published_message_when_its_entry_is_proven_then_the_proof_verifies_here(
    admin: AsyncClient, unique: str
) -> None:
    sent = create_envelope("event", a2a(unique), payload={"audited": True})
    await admin.publish(sent)
    entry = await _entry_of(admin, sent.id)
    deadline = time.monotonic() + 10
    while True:  # a checkpoint is signed every second
        try:
            proven = await admin.prove_inclusion(entry["seq"])
            break
        except VerificationError as err:
            if "not covered yet" not in str(err) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)
    assert proven.entry["message_id"] == sent.id
    assert proven.proof["tree_size"] == proven.checkpoint["size"] > entry["seq"]
    key = (await admin.ledger_key())["public_key"]
    await admin.ledger_checkpoint(public_key=key)
    tampered = {**proven.entry, "decision": "deny"}
    with pytest.raises(VerificationError, match="hashes to"):
        verify_entry_in_checkpoint(tampered, proven.proof, proven.checkpoint)
    forged = {**proven.checkpoint, "root_hash": "00" * 32}
    with pytest.raises(VerificationError):
        verify_entry_in_checkpoint(proven.entry, proven.proof, forged)
    other_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    with pytest.raises(VerificationError):
        await admin.ledger_checkpoint(public_key=other_key)


async def test_given_an_older_checkpoint_when_the_ledger_grows_then_the_latest_is_proven_to_extend_it(
    admin: AsyncClient, unique: str
) -> None:
    older = await admin.ledger_checkpoint()
    await admin.publish(create_envelope("event", a2a(unique), payload={"grow": 1}))
    deadline = time.monotonic() + 10
    latest = await admin.prove_consistency(older)
    while latest["size"] == older["size"] and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        latest = await admin.prove_consistency(older)
    assert latest["size"] > older["size"]
    rewritten = {**older, "root_hash": "11" * 32}
    with pytest.raises(VerificationError):
        await admin.prove_consistency(rewritten)  # its signature no longer verifies


# ---- sessions and agents ----------------------------------------------------------------


async def test_given_a_session_when_written_with_versions_then_stale_and_blind_writes_are_refused(
    agent: AsyncClient, admin: AsyncClient, unique: str
) -> None:
    created = await agent.put_session(f"s-{unique}", {"step": 1}, create=True)
    assert (created["version"], created["data"]) == (1, {"step": 1})
    replaced = await agent.put_session(f"s-{unique}", {"step": 2}, version=1)
    assert replaced["version"] == 2
    with pytest.raises(ApiError) as stale:
        await agent.put_session(f"s-{unique}", {"step": 3}, version=1)
    assert (stale.value.code, stale.value.details["current_version"]) == ("PRECONDITION_FAILED", 2)
    with pytest.raises(ApiError) as blind:
        await agent.put_session(f"s-{unique}", {"step": 3})
    assert blind.value.code == "PRECONDITION_REQUIRED" and blind.value.status == 428
    assert (await agent.get_session(f"s-{unique}"))["data"] == {"step": 2}
    assert (await admin.get_session(f"s-{unique}"))["version"] == 2, "an admin may read it"


async def test_given_an_agent_heartbeat_when_agents_are_listed_then_it_is_present(
    agent: AsyncClient, admin: AsyncClient
) -> None:
    await agent.heartbeat("planner-agent", capabilities=["plan"], ttl_ms=60000)
    present = {a["id"]: a for a in await admin.list_agents()}
    assert present["planner-agent"]["capabilities"] == ["plan"]
    with pytest.raises(Forbidden):
        await agent.heartbeat("someone-else")


# ---- CloudEvents ------------------------------------------------------------------------


async def test_given_a_stored_message_when_the_server_renders_it_as_a_cloudevent_then_the_sdk_makes_the_same(
    admin: AsyncClient, unique: str
) -> None:
    sent = create_envelope(
        "event", a2a(unique), name="HELLO", payload={"x": [1, 2.5]}, rbac=["a.read"],
        headers={"tenant": "acme"}, partition_key="k",
    )  # fmt: skip
    answer = await admin.publish(sent)
    assert isinstance(answer, Accepted) and answer.seq is not None
    stored = await admin.get_message("ACE_EVENTS", answer.seq)
    rendered = await admin.get_message_cloudevent("ACE_EVENTS", answer.seq)
    assert to_cloudevent(stored["envelope"]) == rendered


# ---- refusals ---------------------------------------------------------------------------


async def test_given_bad_input_when_sent_then_each_refusal_is_an_exception_with_the_servers_code(
    agent: AsyncClient, admin: AsyncClient, server: Any, unique: str
) -> None:
    broken = create_envelope("event", a2a(unique), payload={})
    broken.subject = "a..b"
    with pytest.raises(InvalidEnvelope) as invalid:
        await agent.publish(broken)
    assert invalid.value.status == 400
    assert [v["path"] for v in invalid.value.details["violations"]] == ["/subject"]

    with pytest.raises(Forbidden) as forbidden:
        await agent.publish(create_envelope("command", f"ace.comms.http.ops.{unique}.cmd.drop_table.v1"))
    assert any("planner-agent" in reason for reason in forbidden.value.details["reasons"])
    denied = await admin.ledger_entries(kind="denied", limit=1000)
    assert any(unique in e["subject"] and e["actor"].endswith("planner-agent") for e in denied["entries"]), denied

    async with AsyncClient(server.url, api_key="not-a-key") as stranger:
        with pytest.raises(Unauthenticated) as unauthenticated:
            await stranger.list_streams()
        assert unauthenticated.value.status == 401
        with pytest.raises(Unauthenticated):
            await stranger.connect()

    with pytest.raises(ApiError) as missing:
        await admin.fetch("NO_SUCH_STREAM", "nobody")
    assert missing.value.status == 404 and missing.value.code in {"STREAM_NOT_FOUND", "NOT_FOUND"}

    async with await agent.connect() as ws:
        with pytest.raises(InvalidEnvelope) as over_ws:
            await ws.publish(broken)
        assert over_ws.value.status is None, "a WebSocket error frame has no HTTP status"
        with pytest.raises(Forbidden):
            await ws.subscribe("ace.comms.system.>")
        still_open = await ws.publish(create_envelope("event", a2a(unique), payload={}))
        assert isinstance(still_open, Accepted), "an error frame leaves the connection open"
