"""ACE::COMMS for Python: the ``gme/1`` envelope, the ML contracts, and clients of the server's
HTTP and WebSocket APIs.

- :func:`create_envelope`, :func:`validate_envelope`, :class:`Envelope` — ``envelope``;
- :class:`AsyncClient` (asyncio, ``httpx`` + ``websockets``) and :class:`Client` (the same,
  synchronous) — ``client``, ``sync``, ``ws``: publish (single and batch), subscribe (async
  iterator), request/reply, durable consumers (fetch, ack, nak, term), approvals, agents, and
  ledger proofs verified here (RFC 6962, Ed25519) — ``ledger``;
- the ML contract models (:class:`~ace_comms.ml.Experience`...) — ``ml``;
- CloudEvents 1.0 conversion — ``cloudevents``;
- every refusal as :class:`ApiError` with the server's stable ``code`` — ``errors``.

```python
from ace_comms import Client, create_envelope

with Client("http://127.0.0.1:8500", api_key="...") as client:
    answer = client.publish(create_envelope("event", "ace.comms.a2a.agent.me.evt.hello.v1", payload={"hi": 1}))
```
"""

from .client import AsyncClient
from .cloudevents import from_cloudevent, to_cloudevent
from .envelope import (
    Envelope,
    Governance,
    Label,
    MessageKind,
    Priority,
    QoSClass,
    Source,
    SourceType,
    ValidationIssue,
    ValidationResult,
    create_envelope,
    validate_envelope,
)
from .errors import (
    AceCommsError,
    ApiError,
    ConnectionClosed,
    Conflict,
    ContractViolation,
    Forbidden,
    InvalidEnvelope,
    NotFound,
    RequestTimeout,
    TransportError,
    Unauthenticated,
    VerificationError,
)
from .ledger import VerifiedInclusion
from .models import Accepted, Approval, BatchResult, Delivery, Pending
from .sync import Client
from .ws import Message, Subscription, WsConnection

__version__ = "0.1.0"

__all__ = [
    "Accepted",
    "AceCommsError",
    "ApiError",
    "Approval",
    "AsyncClient",
    "BatchResult",
    "Client",
    "Conflict",
    "ConnectionClosed",
    "ContractViolation",
    "Delivery",
    "Envelope",
    "Forbidden",
    "Governance",
    "InvalidEnvelope",
    "Label",
    "Message",
    "MessageKind",
    "NotFound",
    "Pending",
    "Priority",
    "QoSClass",
    "RequestTimeout",
    "Source",
    "SourceType",
    "Subscription",
    "TransportError",
    "Unauthenticated",
    "ValidationIssue",
    "ValidationResult",
    "VerificationError",
    "VerifiedInclusion",
    "WsConnection",
    "create_envelope",
    "from_cloudevent",
    "to_cloudevent",
    "validate_envelope",
]
