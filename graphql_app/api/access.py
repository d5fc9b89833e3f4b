"""Who calls /graphql, and whether the operation they sent is theirs to run.

A caller is one of three:
- a bearer token (the same resource server as /mcp: audience, issuer, expiry);
- a staff user of the Django admin, by session cookie, on a request that passes
  Django's CSRF check (a cookie is sent by the browser on its own; the CSRF
  token proves the page asking is ours);
- nobody.

Mutations need the write scope (staff sessions hold both scopes); queries need
the read scope unless GRAPHQL_PUBLIC_QUERIES is on. The check runs after the
operation is parsed and before any resolver (`RequireScopes`), so a refused
operation changes nothing. A token that does not verify, or a session without
a valid CSRF token, is refused before the operation is read at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from sessions_app.auth.resource import AuthFailure, resource_server


@dataclass(frozen=True)
class Caller:
    scopes: frozenset[str]
    # Who, for logs: "<issuer> <subject>", "staff:<username>", or "" for nobody.
    name: str = ""

    @property
    def anonymous(self) -> bool:
        return not self.name


NOBODY = Caller(frozenset())


async def identify(request: HttpRequest) -> Caller | HttpResponse:
    """The caller of `request`, or the response refusing it (bad token 401, failed CSRF check 403)."""
    server = resource_server()
    settings = server.settings
    if not server.enabled:
        # Development without authorization: everyone may do everything (said at startup).
        return Caller(frozenset({settings.read_scope, settings.write_scope}), name="anyone")
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        try:
            principal = await server.authenticate(authorization)
        except AuthFailure as failure:
            return refusal(failure)
        return Caller(principal.scopes, name=principal.key)
    user = await request.auser()
    if not (user.is_active and user.is_staff):
        return NOBODY
    if request.method not in ("GET", "HEAD", "OPTIONS") and (rejected := await _csrf_rejection(request)):
        return rejected
    return Caller(frozenset({settings.read_scope, settings.write_scope}), name=f"staff:{user.get_username()}")


async def _csrf_rejection(request: HttpRequest) -> HttpResponse | None:
    # The middleware's own check, run here because only cookie callers need it:
    # token callers and anonymous API clients have no CSRF token to send.
    check = CsrfViewMiddleware(_unused)
    return await sync_to_async(check.process_view)(request, _unused, (), {})


def _unused(request: HttpRequest) -> HttpResponse:
    """The middleware's next step and checked view: never called, only inspected."""
    raise AssertionError("not called")


def refusal(failure: AuthFailure) -> JsonResponse:
    response = JsonResponse({"errors": [{"message": failure.description}]}, status=failure.status)
    response["WWW-Authenticate"] = resource_server().www_authenticate(failure)
    return response


def caller_of(request: HttpRequest) -> Caller:
    caller = getattr(request, "graphql_caller", NOBODY)
    return caller if isinstance(caller, Caller) else NOBODY


class RequireScopes(SchemaExtension):
    """Refuses an operation its caller may not run, before any resolver does (the result is set, so none runs)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        failure = _failure(caller_of(context.request), self.execution_context.operation_type)
        if failure is not None:
            context.response.status_code = failure.status
            context.response["WWW-Authenticate"] = resource_server().www_authenticate(failure)
            code = "UNAUTHENTICATED" if failure.status == 401 else "FORBIDDEN"
            self.execution_context.result = ExecutionResult(
                data=None, errors=[GraphQLError(failure.description, extensions={"code": code})]
            )
        yield


def _failure(caller: Caller, operation: OperationType) -> AuthFailure | None:
    settings = resource_server().settings
    if operation is OperationType.MUTATION:
        scope = settings.write_scope
    elif settings.graphql_public_queries:
        return None
    else:
        scope = settings.read_scope
    if scope in caller.scopes:
        return None
    if caller.anonymous:
        return AuthFailure(401, f"this operation needs a bearer token with the {scope} scope", scope=scope)
    wanted = " ".join(dict.fromkeys((*sorted(caller.scopes), scope)))
    return AuthFailure(403, f"this operation needs the {scope} scope", error="insufficient_scope", scope=wanted)
