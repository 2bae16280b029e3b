"""The answers of the server's API as pydantic models (lenient: a field the server adds later
is kept, never an error), and the WebSocket frames of ``/ws`` (strict: a test holds them to the
server's AsyncAPI document, ``contracts/comms/asyncapi.json``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .envelope import Envelope


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class Accepted(_Answer):
    """A stored publish: its envelope id, stream and sequence (``None`` when no stream captures
    the subject: delivered live only), and whether it was a duplicate of an earlier one."""

    id: str
    stream: str | None = None
    seq: int | None = None
    duplicate: bool = False

    @property
    def held(self) -> bool:
        """Always ``False``: this publish was not held."""
        return False


class Pending(_Answer):
    """A publish held for a human's approval: nothing is stored until it is approved."""

    status: Literal["pending_approval"] = "pending_approval"
    id: str
    approval_id: str

    @property
    def held(self) -> bool:
        """Always ``True``."""
        return True


PublishResult = Union[Accepted, Pending]


def publish_result(body: dict[str, Any]) -> PublishResult:
    """The publish answer of a JSON body: :class:`Pending` when held, else :class:`Accepted`."""
    if body.get("status") == "pending_approval":
        return Pending.model_validate(body)
    return Accepted.model_validate(body)


class BatchItem(_Answer):
    """One envelope of a batch: ``status`` 202 with its ``accepted`` or ``held`` answer, or
    the HTTP status a single publish would have had and its ``error``."""

    status: int
    accepted: Accepted | None = None
    held: Pending | None = None
    error: dict[str, Any] | None = None

    @classmethod
    def of(cls, item: dict[str, Any]) -> BatchItem:
        """The item of the server's untagged batch result."""
        if "error" in item:
            return cls(status=item["status"], error=item["error"])
        if "held" in item:
            return cls(status=item["status"], held=Pending.model_validate(item["held"]))
        fields = {k: v for k, v in item.items() if k != "status"}
        return cls(status=item["status"], accepted=Accepted.model_validate(fields))


class BatchResult(_Answer):
    """The answer of a batch: counts and one :class:`BatchItem` per envelope, in order."""

    accepted: int
    refused: int
    held: int = 0
    results: list[BatchItem]

    @classmethod
    def of(cls, body: dict[str, Any]) -> BatchResult:
        """The batch answer of a JSON body."""
        items = [BatchItem.of(item) for item in body.get("results", [])]
        return cls(
            accepted=body["accepted"],
            refused=body["refused"],
            held=body.get("held", 0),
            results=items,
        )


class Delivery(_Answer):
    """A message fetched from a durable consumer: its stream sequence (the handle for
    ack/nak/term), its delivery count (1 the first time) and the envelope."""

    seq: int
    delivery: int
    envelope: Envelope


class AckResult(_Answer):
    """Which sequences were settled, and which failed with their error."""

    done: list[int] = Field(default_factory=list)
    failed: list[dict[str, Any]] = Field(default_factory=list)


class Approval(_Answer):
    """A held message and its decision."""

    approval_id: str
    status: Literal["pending", "approved", "rejected", "expired"]
    envelope: Envelope
    requested_by: dict[str, Any]
    reasons: list[str] = Field(default_factory=list)
    created_at: str
    expires_at: str
    decided_by: str | None = None
    decided_at: str | None = None
    comment: str | None = None


class Decided(_Answer):
    """A decision's answer: the approval, and the publish answer of a released message."""

    approval: Approval
    accepted: Accepted | None = None


# ---- the WebSocket frames -------------------------------------------------------------------


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The frame as the JSON object sent on the socket."""
        out = self.model_dump(mode="json", exclude_none=True)
        for name in ("envelope", "envelopes"):
            value = getattr(self, name, None)
            if isinstance(value, Envelope):
                out[name] = value.to_wire()
            elif isinstance(value, list):
                out[name] = [e.to_wire() for e in value]
        return out


class SubscribeFrame(_Frame):
    """``subscribe``: a live ``pattern`` (optionally in a ``queue`` group), or a durable
    ``consumer`` of a ``stream``."""

    type: Literal["subscribe"] = "subscribe"
    id: str | None = None
    sid: str
    pattern: str | None = None
    queue: str | None = None
    stream: str | None = None
    consumer: str | None = None


class UnsubscribeFrame(_Frame):
    """``unsubscribe``."""

    type: Literal["unsubscribe"] = "unsubscribe"
    id: str | None = None
    sid: str


class PublishFrame(_Frame):
    """``publish``: answered by ``ok`` with the publish answer."""

    type: Literal["publish"] = "publish"
    id: str | None = None
    envelope: Envelope


class PublishBatchFrame(_Frame):
    """``publish_batch``: answered by one ``ok`` with the batch answer."""

    type: Literal["publish_batch"] = "publish_batch"
    id: str | None = None
    envelopes: list[Envelope]


class AckFrame(_Frame):
    """``ack``, ``nak`` (redeliver after ``delay_ms``) or ``term`` (dead-letter with
    ``reason``) of one consumer delivery."""

    type: Literal["ack", "nak", "term"]
    id: str | None = None
    sid: str
    seq: int
    delay_ms: int | None = None
    reason: str | None = None


ClientFrame = Annotated[
    Union[SubscribeFrame, UnsubscribeFrame, PublishFrame, PublishBatchFrame, AckFrame],
    Field(discriminator="type"),
]


class MessageFrame(_Frame):
    """``message``: a live message, or a consumer delivery with ``stream``, ``seq`` and
    ``delivery``."""

    type: Literal["message"] = "message"
    sid: str
    envelope: Envelope
    stream: str | None = None
    seq: int | None = None
    delivery: int | None = None


class OkFrame(_Frame):
    """``ok``: the client frame ``id`` succeeded, with its ``result`` when it has one."""

    type: Literal["ok"] = "ok"
    id: str | None = None
    result: Any = None


class ErrorDetail(_Frame):
    """The ``error`` member of an error body."""

    code: str
    message: str
    details: Any = None


class ErrorFrame(_Frame):
    """``error``: the client frame ``id`` failed; the connection stays open."""

    type: Literal["error"] = "error"
    id: str | None = None
    error: ErrorDetail


ServerFrame = Annotated[
    Union[MessageFrame, OkFrame, ErrorFrame],
    Field(discriminator="type"),
]
