"""Keycloak logins of the YAPTIDE face: checklist case 61 and the checks of spec/yaptide.md
§3.7–§3.8 and §7.8–§7.9.

A fake Keycloak realm (``http.server`` in a thread) serves a JWKS with one RSA and one EC
key; tokens are signed here with PyJWT the way Keycloak signs them. The port is chosen at
import time so that the module's ``CONFIG`` can point the server at it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from support.live import LiveServer, free_port
from support.yaptide import UI_ORIGIN, assert_cors, assert_error, yaptide_server

REALM = "plgrid"
CLIENT_ID = "yaptide-test"
SERVICE = "PLG_YAPTIDE_ACCESS"
USERNAME = "plgalice"
KEYCLOAK_PORT = free_port()
KEYCLOAK_URL = f"http://127.0.0.1:{KEYCLOAK_PORT}"
ISSUER = f"{KEYCLOAK_URL}/realms/{REALM}"
CERTS_PATH = f"/realms/{REALM}/protocol/openid-connect/certs"
KEYCLOAK_SETTINGS = {"base_url": KEYCLOAK_URL, "realm": REALM, "client_id": CLIENT_ID}
CONFIG: dict[str, Any] = {"yaptide": {"keycloak": KEYCLOAK_SETTINGS}}

INVALID = "Invalid Keycloak token"
RSA_KID, EC_KID = "rsa-key", "ec-key"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(public: dict[str, Any], kid: str, alg: str) -> dict[str, Any]:
    return {**public, "kid": kid, "alg": alg, "use": "sig"}


JWKS = {
    "keys": [
        _jwk(RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True), RSA_KID, "RS256"),
        _jwk(ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True), EC_KID, "ES256"),
    ]
}


class FakeRealm(ThreadingHTTPServer):
    """Serves the realm's JWKS and counts how often it was fetched."""

    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _CertsHandler)
        self.fetches = 0
        self.lock = threading.Lock()


class _CertsHandler(BaseHTTPRequestHandler):
    server: FakeRealm

    def do_GET(self) -> None:  # noqa: N802 (the http.server interface)
        if self.path != CERTS_PATH:
            self.send_error(404)
            return
        with self.server.lock:
            self.server.fetches += 1
        data = json.dumps(JWKS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def realm_server() -> Iterator[FakeRealm]:
    realm = FakeRealm(KEYCLOAK_PORT)
    thread = threading.Thread(target=realm.serve_forever, daemon=True)
    thread.start()
    yield realm
    realm.shutdown()
    realm.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def realm(realm_server: FakeRealm, server: LiveServer) -> FakeRealm:
    """The fake realm, its fetch count reset for this module's fresh server (which has
    fetched nothing yet)."""
    with realm_server.lock:
        realm_server.fetches = 0
    return realm_server


def claims(**changes: Any) -> dict[str, Any]:
    """A Keycloak access token's claims for ``plgalice`` with access; ``None`` drops a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": ["account", CLIENT_ID],
        "azp": CLIENT_ID,
        "sub": "5f8d7a2e-0000-4000-8000-000000000001",
        "iat": now,
        "exp": now + 300,
        "typ": "Bearer",
        "preferred_username": USERNAME,
        "plgridAccessServices": ["PLG_OTHER", SERVICE],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(key: Any = RSA_KEY, algorithm: str = "RS256", kid: str = RSA_KID, **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm=algorithm, headers={"kid": kid})


def keycloak_login(
    server: LiveServer,
    bearer: str | None,
    body: dict[str, Any] | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    headers = {"Origin": UI_ORIGIN}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    payload = {"username": USERNAME} if body is None else body
    if client is not None:
        return client.post("/auth/keycloak", json=payload, headers=headers)
    with server.client() as fresh:
        return fresh.post("/auth/keycloak", json=payload, headers=headers)


def set_cookie_names(answer: httpx.Response) -> set[str]:
    return {h.split("=", 1)[0].strip() for h in answer.headers.get_list("set-cookie")}


def test_jwks_is_fetched_once_for_many_logins(server: LiveServer, realm: FakeRealm) -> None:
    """§7.9: the JWKS is cached: several logins (and refusals) fetch it once."""
    for _ in range(3):
        assert keycloak_login(server, token()).status_code == 202
    assert keycloak_login(server, token(preferred_username="plgbob")).status_code == 403
    assert (
        keycloak_login(server, token(kid=EC_KID, key=EC_KEY, algorithm="ES256")).status_code == 202
    )
    assert realm.fetches == 1


def test_valid_token_logs_in(server: LiveServer, realm: FakeRealm) -> None:
    """§3.7: a valid token with the matching username → 202, keys exactly `{message,
    access_exp}` (≈ 30 min ahead), an `access_token` cookie and no refresh cookie; the
    cookie then works on `GET /auth/status`."""
    with server.client() as client:
        before = time.time() * 1000
        answer = keycloak_login(server, token(), client=client)
        assert answer.status_code == 202, answer.text
        assert_cors(answer)
        body = answer.json()
        assert set(body) == {"message", "access_exp"}
        assert body["message"] == "Successfully logged in"
        assert type(body["access_exp"]) is int
        assert abs(body["access_exp"] - before - 30 * 60_000) < 5_000
        assert set_cookie_names(answer) == {"access_token"}
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie

        status = client.get("/auth/status")
        assert status.status_code == 200, status.text
        assert status.json() == {"message": "User status", "username": USERNAME}


def test_ec_signed_token_logs_in(server: LiveServer, realm: FakeRealm) -> None:
    """§3.7: ES256 is accepted as well as RS256."""
    answer = keycloak_login(server, token(key=EC_KEY, algorithm="ES256", kid=EC_KID))
    assert answer.status_code == 202, answer.text


def test_audience_may_be_named_by_azp_alone(server: LiveServer, realm: FakeRealm) -> None:
    """§3.7 step 4: `aud` *or* `azp` contains the client id."""
    answer = keycloak_login(server, token(aud="account"))
    assert answer.status_code == 202, answer.text
    answer = keycloak_login(server, token(aud=CLIENT_ID, azp="another-client"))
    assert answer.status_code == 202, answer.text


def test_keycloak_login_grants_cluster_access(server: LiveServer, realm: FakeRealm) -> None:
    """§3.7: the Keycloak user is upserted with cluster access (`GET /clusters` → 200)."""
    with server.client() as client:
        assert keycloak_login(server, token(), client=client).status_code == 202
        answer = client.get("/clusters")
        assert answer.status_code == 200, answer.text
        assert set(answer.json()) == {"message", "clusters"}


def test_case_61_username_must_match_the_token(server: LiveServer, realm: FakeRealm) -> None:
    """#61: `POST /auth/keycloak`, valid token (test JWKS) whose `preferred_username` ≠
    `username` → 403; no cookie set."""
    with server.client() as client:
        answer = keycloak_login(server, token(preferred_username="plgmallory"), client=client)
        body = assert_error(answer, 403)
        assert body["message"] == "Username does not match the Keycloak token"
        assert "set-cookie" not in answer.headers
        assert_cors(answer)
        assert assert_error(client.get("/auth/status"), 401)["message"] == "No token provided"


@pytest.mark.parametrize("services", [None, [], ["PLG_OTHER"], "PLG_YAPTIDE_ACCESS"], ids=repr)
def test_token_without_the_service_claim(
    server: LiveServer, realm: FakeRealm, services: Any
) -> None:
    """§3.7 step 5: `plgridAccessServices` lacking the service → 403, no cookie."""
    answer = keycloak_login(server, token(plgridAccessServices=services))
    body = assert_error(answer, 403)
    assert body["message"] == f"User {USERNAME} has no access to this service"
    assert "set-cookie" not in answer.headers


INVALID_TOKENS = {
    "wrong issuer": lambda: token(iss=f"{KEYCLOAK_URL}/realms/other"),
    "expired": lambda: token(exp=int(time.time()) - 120),
    "no exp": lambda: token(exp=None),
    "wrong audience": lambda: token(aud="account", azp="another-client"),
    "HS256": lambda: token(key="a-shared-secret-of-thirty-two-bytes!", algorithm="HS256"),
    "alg none": lambda: token(key=None, algorithm="none"),
    "unknown key": lambda: token(key=STRANGER_KEY, kid="stranger"),
    "known kid, wrong key": lambda: token(key=STRANGER_KEY),
    "garbage": lambda: "not-a-token",
}


@pytest.mark.parametrize("kind", list(INVALID_TOKENS))
def test_invalid_token_is_refused(server: LiveServer, realm: FakeRealm, kind: str) -> None:
    """§3.7 step 4: a token that does not verify (issuer, expiry, audience, algorithm,
    signature) → 401 `Invalid Keycloak token`, no cookie."""
    answer = keycloak_login(server, INVALID_TOKENS[kind]())
    body = assert_error(answer, 401)
    assert body["message"] == INVALID
    assert "set-cookie" not in answer.headers
    assert_cors(answer)


def test_expiry_has_thirty_seconds_of_leeway(server: LiveServer, realm: FakeRealm) -> None:
    """§3.7 step 4: `exp` is checked with 30 s of leeway."""
    answer = keycloak_login(server, token(exp=int(time.time()) - 10))
    assert answer.status_code == 202, answer.text


def test_unknown_kid_refetches_at_most_once_a_minute(server: LiveServer, realm: FakeRealm) -> None:
    """§3.7: an unknown `kid` triggers at most one refetch per 60 s."""
    before = realm.fetches
    for _ in range(3):
        assert_error(keycloak_login(server, token(key=STRANGER_KEY, kid="stranger")), 401)
    assert realm.fetches - before <= 1


def test_missing_bearer_token(server: LiveServer, realm: FakeRealm) -> None:
    """§3.7 step 2: no Bearer token → 401 `No token provided` (before the body is read)."""
    answer = keycloak_login(server, None, body={})
    assert assert_error(answer, 401)["message"] == "No token provided"
    assert_cors(answer)
    with server.client() as client:
        basic = client.post(
            "/auth/keycloak", json={"username": USERNAME}, headers={"Authorization": "Basic eA=="}
        )
    assert assert_error(basic, 401)["message"] == "No token provided"


def test_missing_username(server: LiveServer, realm: FakeRealm) -> None:
    """§3.7 step 3: a valid token without `username` in the body → 400, no cookie."""
    answer = keycloak_login(server, token(), body={})
    assert_error(answer, 400)
    assert "set-cookie" not in answer.headers


def test_keycloak_logout_revokes_the_login(server: LiveServer, realm: FakeRealm) -> None:
    """§3.8: `DELETE /auth/keycloak` → 200 `User logged out`; both cookies cleared and the
    login revoked; without a cookie → 401."""
    with server.client() as client:
        assert keycloak_login(server, token(), client=client).status_code == 202
        access = client.cookies["access_token"]
        answer = client.delete("/auth/keycloak", headers={"Origin": UI_ORIGIN})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"message": "User logged out"}
        assert_cors(answer)
        cleared = [h.lower() for h in answer.headers.get_list("set-cookie")]
        for name in ("access_token", "refresh_token"):
            assert any(h.startswith(f"{name}=") and "max-age=0" in h for h in cleared), name
    with server.client() as stale:
        status = stale.get("/auth/status", headers={"Cookie": f"access_token={access}"})
        assert_error(status, 401)
        assert_error(stale.delete("/auth/keycloak"), 401)


def test_not_configured(backend: str, tmp_path: Path) -> None:
    """§3.7 step 1: without Keycloak settings → 403 `Keycloak login is not available on this
    server`, whatever the request holds."""
    with yaptide_server(backend, tmp_path) as live, live.client() as client:
        answer = client.post(
            "/auth/keycloak",
            json={"username": USERNAME},
            headers={"Authorization": f"Bearer {token()}", "Origin": UI_ORIGIN},
        )
        body = assert_error(answer, 403)
        assert body["message"] == "Keycloak login is not available on this server"
        assert_cors(answer)
        bare = client.post("/auth/keycloak")
        assert assert_error(bare, 403)["message"] == body["message"]


def test_unreachable_keycloak(backend: str, tmp_path: Path) -> None:
    """§3.7: Keycloak unreachable with nothing cached → 503."""
    nowhere = {**KEYCLOAK_SETTINGS, "base_url": f"http://127.0.0.1:{free_port()}"}
    extra = {"yaptide": {"keycloak": nowhere}}
    with yaptide_server(backend, tmp_path, extra) as live, live.client() as client:
        answer = client.post(
            "/auth/keycloak",
            json={"username": USERNAME},
            headers={"Authorization": f"Bearer {token()}", "Origin": UI_ORIGIN},
        )
        assert_error(answer, 503)
        assert "set-cookie" not in answer.headers
        assert_cors(answer)
