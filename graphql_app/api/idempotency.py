"""Mutations that may be sent twice: the `Idempotency-Key` request header.

A POST to /graphql with `Idempotency-Key: <key>` runs once per caller and key:
- the first request claims the key (a row in the database, unique per caller
  and key, so one claim wins across every node), runs, and its answer is
  stored with it;
- the same key with the same body (byte for byte) gets the stored answer,
  marked `Idempotent-Replayed: true`, without running again;
- the same key with another body gets 422 (IDEMPOTENCY_KEY_REUSED);
- the same key while the first request is still running gets 409
  (IDEMPOTENCY_KEY_IN_USE) with Retry-After;
- an answer other than 200 (a refused token, a server error) is not kept: the
  claim is dropped and the key may be used again.

Keys belong to the caller (`Caller.name`): two callers may use the same key.
They expire after GRAPHQL_IDEMPOTENCY_TTL seconds. The database, not the
cache, holds them: it is shared by every node in any setup (the cache is
per process without Redis), and its unique constraint makes the claim atomic.
A claim whose node died before answering stays unsettled (409) until it
expires: whether that request ran is unknown, and running it again is what
the key exists to prevent.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from graphql_app.models import IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Claim:
    """This request holds the key: settle it with the answer once there is one."""

    caller: str
    key: str

    async def settle(self, response: HttpResponseBase) -> None:
        if response.status_code == 200 and isinstance(response, HttpResponse):
            await IdempotentRequest.objects.filter(caller=self.caller, key=self.key).aupdate(
                status=response.status_code, body=response.content
            )
        else:
            await self.release()

    async def release(self) -> None:
        await IdempotentRequest.objects.filter(caller=self.caller, key=self.key, status=None).adelete()


def _refusal(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()


def _claim_or_find(caller: str, key: str, request_hash: str) -> IdempotentRequest | None:
    """None if this request now holds the key; else the request that does (or did)."""
    now = timezone.now()
    # Expired keys go first, this one's included: they may be used again.
    IdempotentRequest.objects.filter(expires_at__lte=now).delete()
    try:
        with transaction.atomic():
            IdempotentRequest.objects.create(
                caller=caller,
                key=key,
                request_hash=request_hash,
                expires_at=now + datetime.timedelta(seconds=settings.GRAPHQL_IDEMPOTENCY_TTL),
            )
    except IntegrityError:
        return IdempotentRequest.objects.filter(caller=caller, key=key).first() or IdempotentRequest(
            caller=caller, key=key, request_hash=request_hash
        )  # released between the two queries: answered as in use, the client tries again
    return None


async def claim(caller: str, key: str, body: bytes) -> Claim | HttpResponse:
    """Claim `key` for this request, or the answer to send instead (the stored one, or a refusal)."""
    if not _valid_key(key):
        return _refusal(
            400, "BAD_IDEMPOTENCY_KEY", f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
        )
    request_hash = hashlib.sha256(body).hexdigest()
    earlier = await sync_to_async(_claim_or_find)(caller, key, request_hash)
    if earlier is None:
        return Claim(caller, key)
    if earlier.request_hash != request_hash:
        return _refusal(422, "IDEMPOTENCY_KEY_REUSED", f"This {HEADER} was used with a different request.")
    if earlier.status is None or earlier.body is None:
        refusal = _refusal(409, "IDEMPOTENCY_KEY_IN_USE", f"A request with this {HEADER} has not been answered yet.")
        refusal["Retry-After"] = "1"
        return refusal
    stored = HttpResponse(bytes(earlier.body), status=earlier.status, content_type="application/json")
    stored[REPLAYED_HEADER] = "true"
    return stored
