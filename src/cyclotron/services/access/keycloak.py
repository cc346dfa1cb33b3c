"""Keycloak logins: verify a realm's access token against its JWKS, cached.

The key set is fetched from ``<base>/realms/<realm>/protocol/openid-connect/certs`` and kept
for ``jwks_cache_seconds``; a token signed with a key id the cache lacks triggers at most one
refetch per ``jwks_refetch_seconds``. Keycloak unreachable with nothing cached: 503.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cyclotron.errors import Forbidden, ServiceUnavailable, Unauthorized
from cyclotron.settings import KeycloakSettings

if TYPE_CHECKING:
    from jwt import PyJWK

ALGORITHMS = ["RS256", "ES256"]
LEEWAY_SECONDS = 30
INVALID = "Invalid Keycloak token"


@dataclass(frozen=True)
class KeycloakIdentity:
    username: str
    has_access: bool


class KeycloakVerifier:
    def __init__(self, settings: KeycloakSettings) -> None:
        self.settings = settings
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    @property
    def certs_url(self) -> str:
        return f"{self.settings.issuer}/protocol/openid-connect/certs"

    # httpx and PyJWT are imported where a Keycloak token is checked: every server builds
    # a verifier, most never see such a token.
    def _fetch(self) -> None:
        import httpx
        import jwt

        try:
            answer = httpx.get(self.certs_url, timeout=self.settings.timeout)
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            if not self._keys:
                raise ServiceUnavailable("Keycloak is unreachable; try again later") from exc
            return  # keep serving with the keys we have
        keys: dict[str, PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            try:
                key = jwt.PyJWK.from_dict(entry)
            except jwt.PyJWTError:
                continue
            if key.key_id:
                keys[key.key_id] = key
        self._keys = keys
        self._fetched_at = time.monotonic()

    def _key(self, kid: str) -> PyJWK:
        with self._lock:
            now = time.monotonic()
            age = None if self._fetched_at is None else now - self._fetched_at
            stale = age is None or age > self.settings.jwks_cache_seconds
            unknown = kid not in self._keys and (
                age is None or age > self.settings.jwks_refetch_seconds
            )
            if stale or unknown:
                self._fetch()
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized(INVALID)
        return key

    def verify(self, token: str, username: str) -> KeycloakIdentity:
        """The checks of yaptide.md §3.7, steps 4 to 6, in order."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(INVALID) from exc
        if header.get("alg") not in ALGORITHMS or not isinstance(header.get("kid"), str):
            raise Unauthorized(INVALID)
        key = self._key(header["kid"])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(INVALID) from exc
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if (
            self.settings.client_id not in audiences
            and claims.get("azp") != self.settings.client_id
        ):
            raise Unauthorized(INVALID)
        services = claims.get("plgridAccessServices") or []
        if not isinstance(services, list) or self.settings.access_service not in services:
            raise Forbidden(f"User {username} has no access to this service")
        if claims.get("preferred_username") != username:
            raise Forbidden("Username does not match the Keycloak token")
        return KeycloakIdentity(username=username, has_access=True)
