"""Who a request acts for, as its access token says, and the verifier interface that says it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Principal:
    issuer: str
    subject: str
    scopes: frozenset[str]
    client_id: str
    # Unix time after which the token no longer counts.
    expires_at: float

    @property
    def key(self) -> str:
        """The one string a session is bound to: issuer and subject (an issuer URL holds no space)."""
        return f"{self.issuer} {self.subject}"


class InvalidToken(Exception):
    """The token is not one this resource accepts; the message says why (sent as error_description)."""


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal:
        """The token's principal; raises InvalidToken. May cost a network round trip: callers cache."""
        ...
