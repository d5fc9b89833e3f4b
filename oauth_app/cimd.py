"""Fetching Client ID Metadata Documents: DOT's SSRF-hardened fetcher, plus loopback for tests.

DOT's fetcher refuses every non-public address, which is what production
needs. Tests serve their documents on 127.0.0.1, so OAUTH_CIMD_ALLOW_LOOPBACK
(off by default) lets a client_id whose host is a loopback IP literal be
fetched directly; every other client_id still goes through DOT's checks.
"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from oauth2_provider.cimd import CIMDError, SafeMetadataFetcher
from oauth2_provider.settings import oauth2_settings


def is_loopback_literal(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MetadataFetcher(SafeMetadataFetcher):  # type: ignore[misc]
    def fetch(self, client_id: str) -> tuple[dict[str, Any], int]:
        parts = urlsplit(client_id)
        if settings.OAUTH_CIMD_ALLOW_LOOPBACK and parts.scheme == "https" and is_loopback_literal(parts.hostname):
            return self._fetch_loopback(client_id)
        result: tuple[dict[str, Any], int] = super().fetch(client_id)
        return result

    def _fetch_loopback(self, client_id: str) -> tuple[dict[str, Any], int]:
        parts = urlsplit(client_id)
        assert parts.hostname is not None  # a loopback literal, checked by fetch()
        seconds = float(oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS)
        pool = urllib3.HTTPSConnectionPool(
            host=parts.hostname,
            port=parts.port or 443,
            timeout=urllib3.Timeout(total=seconds),
            retries=False,
            ssl_context=ssl.create_default_context(),
        )
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            response = pool.urlopen("GET", path, redirect=False, preload_content=False)
            try:
                result: tuple[dict[str, Any], int] = self._read_document(response)
                return result
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as error:
            raise CIMDError(f"could not fetch client_id document: {error}") from error
        finally:
            pool.close()
