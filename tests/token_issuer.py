"""An external token issuer for tests: keys made here, metadata and JWKS served over real HTTP on loopback.

Tokens are RFC 9068 JWTs signed with the issuer's keys (`Issuer.token`), or
with any key a hostile test chooses.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY, OTHER_KEY = new_key(), new_key()


def sign(claims: dict[str, Any], key: Any = KEY, kid: str = "k1", algorithm: str = "RS256") -> str:
    """`claims` signed as an access token; claims whose value is None are left out."""
    present = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(present, key, algorithm=algorithm, headers={"kid": kid, "typ": "at+jwt"})


def unsigned(claims: dict[str, Any]) -> str:
    """`claims` as a JWT with `alg: none`: no signature at all."""
    return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]  # PyJWT types demand a key


def claims_for(issuer: str, audience: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": audience,
        "sub": "42",
        "client_id": "client",
        "scope": "mcp:read",
        "iat": now,
        "exp": now + 300,
        "jti": f"j{time.monotonic_ns()}",
        **overrides,
    }


class Issuer:
    """A real HTTP server publishing RFC 8414 metadata and a JWKS that the test rotates."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": KEY}
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body: dict[str, Any]
                if self.path == "/.well-known/oauth-authorization-server":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [issuer.jwk(kid, key) for kid, key in issuer.keys.items()]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        return {**public, "kid": kid, "use": "sig", "alg": "RS256"}

    def token(self, audience: str, **overrides: Any) -> str:
        return sign(claims_for(self.url, audience, **overrides))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
