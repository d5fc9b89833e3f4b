"""The RSA keys access tokens are signed with, and the public keys that verify them.

The private key comes from OAUTH_SIGNING_KEY_FILE or OAUTH_SIGNING_KEY (PEM);
OAUTH_PREVIOUS_SIGNING_KEYS_FILE holds public keys still accepted after a
rotation. Every key is named by its RFC 7638 thumbprint (`kid`), so a
verifier picks the key from the token header without any registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "RS256"
KEY_BITS = 3072


def signing_key() -> rsa.RSAPrivateKey:
    """The private key new access tokens are signed with."""
    return _load_signing_key(
        settings.OAUTH_SIGNING_KEY_FILE, settings.OAUTH_SIGNING_KEY, settings.OAUTH_CREATE_SIGNING_KEY
    )


def signing_kid() -> str:
    return thumbprint(signing_key().public_key())


def verification_keys() -> dict[str, rsa.RSAPublicKey]:
    """Every public key a token of ours may be signed with, by kid: the current one first."""
    current = signing_key().public_key()
    keys = {thumbprint(current): current}
    for key in _load_public_keys(settings.OAUTH_PREVIOUS_SIGNING_KEYS_FILE):
        keys.setdefault(thumbprint(key), key)
    return keys


def public_jwks() -> dict[str, list[dict[str, str]]]:
    """The JWK Set published at /oauth/jwks: the keys of verification_keys()."""
    return {
        "keys": [
            {**_public_numbers(key), "kid": kid, "use": "sig", "alg": ALGORITHM}
            for kid, key in verification_keys().items()
        ]
    }


def thumbprint(key: rsa.RSAPublicKey) -> str:
    """RFC 7638: base64url SHA-256 of the required members, sorted, no whitespace."""
    canonical = json.dumps(_public_numbers(key), sort_keys=True, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def create_key_file(path: Path) -> None:
    """Write a new RSA private key to `path` (mode 0600) unless a file is already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        # O_EXCL: two processes starting at once keep the first key, not half of each.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


def _public_numbers(key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {"e": _b64_int(numbers.e), "kty": "RSA", "n": _b64_int(numbers.n)}


def _b64_int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Cached per configuration: settings changed by tests load their own key.
@lru_cache(maxsize=8)
def _load_signing_key(path: str, pem: str, create: bool) -> rsa.RSAPrivateKey:
    if pem:
        data, source = pem.encode(), "OAUTH_SIGNING_KEY"
    elif path:
        if create:
            create_key_file(Path(path))
        try:
            data, source = Path(path).read_bytes(), path
        except OSError as error:
            raise ImproperlyConfigured(f"OAUTH_SIGNING_KEY_FILE {path} cannot be read: {error}") from None
    else:
        raise ImproperlyConfigured("no signing key: set OAUTH_SIGNING_KEY_FILE or OAUTH_SIGNING_KEY")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as error:
        raise ImproperlyConfigured(f"{source} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured(f"{source} must be an RSA key (tokens are RS256)")
    return key


@lru_cache(maxsize=8)
def _load_public_keys(path: str) -> tuple[rsa.RSAPublicKey, ...]:
    if not path:
        return ()
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ImproperlyConfigured(f"OAUTH_PREVIOUS_SIGNING_KEYS_FILE {path} cannot be read: {error}") from None
    keys: list[rsa.RSAPublicKey] = []
    for block in text.split("-----END PUBLIC KEY-----"):
        if "-----BEGIN PUBLIC KEY-----" not in block:
            continue
        try:
            key: Any = serialization.load_pem_public_key(f"{block.strip()}\n-----END PUBLIC KEY-----\n".encode())
        except ValueError as error:
            raise ImproperlyConfigured(
                f"OAUTH_PREVIOUS_SIGNING_KEYS_FILE {path}: a key does not parse: {error}"
            ) from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise ImproperlyConfigured(f"OAUTH_PREVIOUS_SIGNING_KEYS_FILE {path} holds a key that is not RSA")
        keys.append(key)
    return tuple(keys)
