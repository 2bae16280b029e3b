"""The exceptions of the SDK.

Every refusal of the server arrives as :class:`ApiError` carrying the server's stable ``code``
(one of ``contracts/comms/errors.schema.json``, listed in :data:`ERROR_CODES`), its
``message``, its structured ``details`` and the HTTP ``status`` (``None`` for a WebSocket
``error`` frame). A few codes have their own subclass so callers can catch them by type; the
``code`` attribute is always there.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def _codes() -> frozenset[str]:
    text = resources.files("ace_comms").joinpath("contracts/comms/errors.schema.json").read_text()
    schema = json.loads(text)
    return frozenset(item["const"] for item in schema["$defs"]["code"]["oneOf"])


#: Every error code the server may answer with (from the packaged errors schema).
ERROR_CODES: frozenset[str] = _codes()


class AceCommsError(Exception):
    """The root of every exception this SDK raises."""


class ApiError(AceCommsError):
    """The server refused: ``code`` is its stable error code."""

    def __init__(
        self,
        code: str,
        message: str,
        details: Any = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        self.status = status

    @classmethod
    def from_body(cls, body: Any, status: int | None = None) -> ApiError:
        """The exception of an error body ``{"error": {code, message, details}}`` (or of the
        ``error`` member of a WebSocket frame), of the subclass its code has."""
        error = body.get("error", body) if isinstance(body, dict) else {}
        code = str(error.get("code", "INTERNAL"))
        message = str(error.get("message", "the server gave no message"))
        kind = _BY_CODE.get(code, ApiError)
        return kind(code, message, error.get("details"), status)


class Unauthenticated(ApiError):
    """``UNAUTHENTICATED``: no credentials, or credentials that do not verify."""


class Forbidden(ApiError):
    """``FORBIDDEN``: RBAC or a policy refused; ``details`` holds the reasons."""


class NotFound(ApiError):
    """``NOT_FOUND``."""


class Conflict(ApiError):
    """``CONFLICT``: the state does not allow it (an approval already decided, a name taken)."""


class InvalidEnvelope(ApiError):
    """``INVALID_ENVELOPE``: ``details`` lists every violation with its field path."""


class ContractViolation(ApiError):
    """``CONTRACT_VIOLATION``: the payload breaks its registered contract."""


_BY_CODE: dict[str, type[ApiError]] = {
    "UNAUTHENTICATED": Unauthenticated,
    "FORBIDDEN": Forbidden,
    "NOT_FOUND": NotFound,
    "CONFLICT": Conflict,
    "INVALID_ENVELOPE": InvalidEnvelope,
    "CONTRACT_VIOLATION": ContractViolation,
}


class TransportError(AceCommsError):
    """The server could not be reached, or answered something that is not the protocol."""


class ConnectionClosed(AceCommsError):
    """The WebSocket is closed; ``code`` and ``reason`` are the close frame's (4008: the
    client read too slowly, 4001: its credentials expired or were revoked)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"the WebSocket closed with {code}: {reason}")
        self.code = code
        self.reason = reason


class RequestTimeout(AceCommsError):
    """No answer (a reply, an ``ok`` frame) arrived in time."""


class VerificationError(AceCommsError):
    """A ledger checkpoint or proof did not verify on this side."""
