"""Access tokens: RS256 JWTs per docs/authorization.md, each also a row in DOT's table.

The row is what revocation deletes; the resource server asks is_active() to
learn whether a token it verified offline has been revoked since.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, set_token_value
from oauthlib.common import Request, generate_token

from oauth_app import keys, resources


def is_active(token: str) -> bool:
    """Whether `token` is still stored (not revoked, not expired): one query on the indexed checksum."""
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    return bool(get_access_token_model().objects.filter(token_checksum=checksum, expires__gt=timezone.now()).exists())


def encode(*, subject: str, client_id: str, scopes: Iterable[str], audience: list[str], seconds: int) -> str:
    """A signed access token; `aud` is a string when there is one audience, as usual."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.OAUTH_ISSUER,
        "aud": audience[0] if len(audience) == 1 else audience,
        "sub": subject,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + seconds,
        "jti": uuid.uuid4().hex,
    }
    headers = {"typ": "at+jwt", "kid": keys.signing_kid()}
    return jwt.encode(claims, keys.signing_key(), algorithm=keys.ALGORITHM, headers=headers)


def generate_access_token(request: Request) -> str:
    """DOT's ACCESS_TOKEN_GENERATOR: called by oauthlib once the token request is valid."""
    # oauthlib sets expires_in on the request before it calls the generator.
    seconds = int(request.expires_in or settings.OAUTH_ACCESS_TOKEN_SECONDS)
    return encode(
        subject=str(request.user.pk),
        client_id=request.client_id or request.client.client_id,
        scopes=request.scopes or [],
        # Settled by oauth_app.validators while the request was validated.
        audience=getattr(request, "resource", None) or [resources.default_resource()],
        seconds=seconds,
    )


def generate_refresh_token(request: Request) -> str:
    """DOT's REFRESH_TOKEN_GENERATOR: an opaque random string, only ever looked up by checksum."""
    return str(generate_token(length=48))


def mint(user: AbstractBaseUser, application: Any, scopes: list[str], seconds: int) -> str:
    """An access token for `user` issued without a flow (manage.py mint_token), stored like any other."""
    audience = [resources.default_resource()]
    token = encode(
        subject=str(user.pk), client_id=application.client_id, scopes=scopes, audience=audience, seconds=seconds
    )
    row = get_access_token_model()(
        user=user,
        application=application,
        scope=" ".join(scopes),
        expires=timezone.now() + timedelta(seconds=seconds),
        resource=audience,
    )
    set_token_value(row, token)
    row.save()
    return token
