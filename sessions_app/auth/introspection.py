"""Opaque tokens, asked about at the issuer's RFC 7662 introspection endpoint.

Each call is a round trip; `resource.ResourceServer` keeps the answers in its
bounded cache, so one token is asked about at most once per cache period.
"""

from __future__ import annotations

from typing import Any

import httpx2

from sessions_app.auth.jwt_verifier import principal_from_claims
from sessions_app.auth.principal import InvalidToken, Principal

TIMEOUT = 5.0


class IntrospectionVerifier:
    def __init__(self, url: str, *, issuer: str, audience: str, client_id: str, client_secret: str) -> None:
        self.url = url
        self.issuer = issuer
        self.audience = audience
        self.auth = httpx2.BasicAuth(client_id, client_secret)

    async def verify(self, token: str) -> Principal:
        try:
            async with httpx2.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
                response = await client.post(
                    self.url,
                    data={"token": token, "token_type_hint": "access_token"},
                    auth=self.auth,
                    headers={"Accept": "application/json"},
                )
            response.raise_for_status()
            answer = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            raise InvalidToken("the token cannot be checked now (introspection failed)") from exc
        if not isinstance(answer, dict) or answer.get("active") is not True:
            raise InvalidToken("the token is not active")
        self._check(answer)
        if "sub" not in answer and isinstance(answer.get("username"), str):
            # RFC 7662 makes `sub` optional; some servers (django-oauth-toolkit) name the user only.
            answer["sub"] = answer["username"]
        return principal_from_claims(answer, self.issuer)

    def _check(self, answer: dict[str, Any]) -> None:
        issuer = answer.get("iss")
        if issuer is not None and str(issuer).rstrip("/") != self.issuer:
            raise InvalidToken("the token comes from an issuer this resource does not trust")
        # Audience-bound tokens only (RFC 8707): an answer without `aud` cannot show the token is ours.
        audience = answer.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise InvalidToken("the token was not issued for this resource")
