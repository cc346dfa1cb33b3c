"""Accounts, cookies and CORS of the YAPTIDE face: checklist cases 1–16, 22 and 62
(spec/yaptide.md §1.4, §1.9, §3.1–§3.6, §7.1–§7.2, §8).

The refresh grace window is shortened to a few seconds so that case 14 ("61 s after #13")
waits past it for real. The restart of case 16 comes last in the module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import jwt
import pytest
from support.live import LiveServer
from support.yaptide import (
    PASSWORD,
    UI_ORIGIN,
    assert_cors,
    assert_error,
    fixture_body,
    login,
)

from cyclotron.services.access import tokens
from cyclotron.signing import SigningKeys

GRACE_SECONDS = 3.0
CONFIG: dict[str, Any] = {"yaptide": {"refresh_grace_seconds": GRACE_SECONDS}}

EVIL_ORIGIN = "http://evil.example"
EXPIRED = "Your login has expired. Please log in again."
FROM_UI = {"Origin": UI_ORIGIN}


def cookies_set(answer: httpx.Response) -> dict[str, dict[str, str]]:
    """The raw ``Set-Cookie`` headers: name -> attributes (lower-case keys), ``value`` too."""
    found: dict[str, dict[str, str]] = {}
    for header in answer.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        parsed = {"value": value}
        for attribute in attributes:
            key, _, text = attribute.partition("=")
            parsed[key.strip().lower()] = text.strip()
        found[name.strip()] = parsed
    return found


def send(
    server: LiveServer,
    method: str,
    path: str,
    cookies: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request from a fresh client that sends exactly the given cookies."""
    headers = dict(kwargs.pop("headers", {}))
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    with server.client() as client:
        return client.request(method, path, headers=headers, **kwargs)


def tokens_of(client: httpx.Client) -> dict[str, str]:
    return {name: client.cookies[name] for name in ("access_token", "refresh_token")}


def jti(token: str) -> str:
    """The ``jti`` claim (the test peeks into the token; clients treat it as opaque)."""
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def now_ms() -> float:
    return time.time() * 1000


@pytest.fixture
def carol(server: LiveServer) -> Iterator[httpx.Client]:
    """A fresh login of its own, for tests that rotate, revoke or log it out."""
    with closing(login(server, "carol")) as client:
        yield client


def test_case_01_root_says_hello(server: LiveServer) -> None:
    """#1: `GET /` → 200, keys `{message}`; message `Hello World!`."""
    answer = send(server, "GET", "/", headers=FROM_UI)
    assert answer.status_code == 200
    assert answer.json() == {"message": "Hello World!"}
    assert_cors(answer)


def test_case_02_preflight_is_answered(server: LiveServer) -> None:
    """#2: `OPTIONS /jobs/direct` preflight from the UI → 200/204; ACAO equals the origin
    exactly; ACAC `true`; Allow-Methods ⊇ POST, DELETE."""
    answer = send(
        server,
        "OPTIONS",
        "/jobs/direct",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert answer.status_code in (200, 204)
    assert_cors(answer)
    methods = {m.strip() for m in answer.headers["access-control-allow-methods"].split(",")}
    assert {"POST", "DELETE"} <= methods
    assert "content-type" in answer.headers["access-control-allow-headers"].lower()
    assert answer.headers.get("access-control-max-age") == "600"


def test_case_03_foreign_origin_gets_no_cors(server: LiveServer) -> None:
    """#3: `GET /` with Origin `http://evil.example` → 200; no `Access-Control-Allow-Origin`."""
    answer = send(server, "GET", "/", headers={"Origin": EVIL_ORIGIN})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-credentials" not in answer.headers


def test_case_04_register_new_user(server: LiveServer) -> None:
    """#4: `PUT /auth/register`, new user → 201, keys `{message}`."""
    answer = send(
        server,
        "PUT",
        "/auth/register",
        json={"username": "dave", "password": PASSWORD},
        headers=FROM_UI,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"message": "User created"}
    assert_cors(answer)
    credentials = {"username": "dave", "password": PASSWORD}
    assert send(server, "POST", "/auth/login", json=credentials).status_code == 202


def test_case_05_register_existing_name(server: LiveServer, alice: httpx.Client) -> None:
    """#5: `PUT /auth/register`, existing name → 403, ⊇ `{message, status_code}`."""
    answer = send(
        server,
        "PUT",
        "/auth/register",
        json={"username": "alice", "password": "another-password"},
        headers=FROM_UI,
    )
    body = assert_error(answer, 403)
    assert body["message"] == "User existing"
    assert_cors(answer)
    # The account is untouched: the old password still logs in.
    credentials = {"username": "alice", "password": PASSWORD}
    assert send(server, "POST", "/auth/login", json=credentials).status_code == 202


def test_case_06_register_without_password(server: LiveServer) -> None:
    """#6: `PUT /auth/register` without password → 400, ⊇ `{message, status_code}`."""
    answer = send(server, "PUT", "/auth/register", json={"username": "erin"}, headers=FROM_UI)
    body = assert_error(answer, 400)
    assert "password" in body["message"]
    assert_cors(answer)
    # Nothing was created: the name is still free.
    again = send(server, "PUT", "/auth/register", json={"username": "erin", "password": PASSWORD})
    assert again.status_code == 201, again.text


def test_register_refuses_a_short_password(server: LiveServer) -> None:
    """§3.2: a password shorter than the minimum (default 8) → 400."""
    answer = send(server, "PUT", "/auth/register", json={"username": "frank", "password": "short"})
    assert_error(answer, 400)


def test_case_07_login_sets_both_cookies(server: LiveServer, alice: httpx.Client) -> None:
    """#7: `POST /auth/login`, good credentials → 202, keys `{message, access_exp,
    refresh_exp}`; integer ms, `access_exp − now ≈ 10 min`; cookies `access_token`,
    `refresh_token` with HttpOnly, SameSite=Lax, Path=/, no Secure over http."""
    before = now_ms()
    answer = send(
        server,
        "POST",
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers=FROM_UI,
    )
    assert answer.status_code == 202, answer.text
    assert_cors(answer)
    body = answer.json()
    assert set(body) == {"message", "access_exp", "refresh_exp"}
    assert body["message"] == "Successfully logged in"
    for key in ("access_exp", "refresh_exp"):
        assert type(body[key]) is int
    assert abs(body["access_exp"] - before - 600_000) < 5_000
    assert abs(body["refresh_exp"] - before - 120 * 60_000) < 5_000

    cookies = cookies_set(answer)
    assert {"access_token", "refresh_token"} <= set(cookies)
    lifetimes = {"access_token": 600, "refresh_token": 7200}
    for name, attributes in cookies.items():
        assert attributes["value"], name
        assert "httponly" in attributes, name
        assert attributes.get("samesite", "").lower() == "lax", name
        assert attributes.get("path") == "/", name
        assert "secure" not in attributes, name
        assert abs(int(attributes["max-age"]) - lifetimes[name]) <= 5, name
        expires = parsedate_to_datetime(attributes["expires"])
        remaining = (expires - datetime.now(UTC)).total_seconds()
        assert abs(remaining - lifetimes[name]) <= 5, name
    # The cookies work.
    status = send(
        server, "GET", "/auth/status", cookies={"access_token": cookies["access_token"]["value"]}
    )
    assert status.json()["username"] == "alice"


def test_case_08_login_with_wrong_password(server: LiveServer, alice: httpx.Client) -> None:
    """#8: `POST /auth/login`, wrong password → 401, message `Invalid login or password`."""
    answer = send(
        server,
        "POST",
        "/auth/login",
        json={"username": "alice", "password": "wrong-password"},
        headers=FROM_UI,
    )
    body = assert_error(answer, 401)
    assert body["message"] == "Invalid login or password"
    assert "set-cookie" not in answer.headers
    assert_cors(answer)


def test_login_of_unknown_user_reads_like_a_wrong_password(server: LiveServer) -> None:
    """§3.3: an unknown user gets the same 401 text as a wrong password."""
    answer = send(server, "POST", "/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert assert_error(answer, 401)["message"] == "Invalid login or password"


@pytest.mark.parametrize("body", [b"not json", b"\xa5\xff{"], ids=["text", "not-utf8"])
def test_case_09_login_with_a_body_that_is_not_json(server: LiveServer, body: bytes) -> None:
    """#9: `POST /auth/login`, body `not json` → 400, ⊇ `{message, status_code}`; so is a body
    that is not even UTF-8 (the framework's own refusal, never a 500)."""
    answer = send(
        server,
        "POST",
        "/auth/login",
        content=body,
        headers={**FROM_UI, "Content-Type": "application/json"},
    )
    assert_error(answer, 400)
    assert_cors(answer)


def test_case_10_status_names_the_user(alice: httpx.Client) -> None:
    """#10: `GET /auth/status` → 200, keys `{message, username}`; username `alice`."""
    answer = alice.get("/auth/status", headers=FROM_UI)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"message": "User status", "username": "alice"}
    assert_cors(answer)


def test_case_11_status_without_cookies(server: LiveServer) -> None:
    """#11: `GET /auth/status` without cookies → 401, message exactly `No token provided`."""
    answer = send(server, "GET", "/auth/status", headers=FROM_UI)
    assert assert_error(answer, 401)["message"] == "No token provided"
    assert_cors(answer)


def test_case_12_status_with_a_garbage_token(server: LiveServer) -> None:
    """#12: `GET /auth/status`, cookie `access_token=garbage` → 401, ⊇ `{message,
    status_code}`."""
    answer = send(
        server, "GET", "/auth/status", cookies={"access_token": "garbage"}, headers=FROM_UI
    )
    assert assert_error(answer, 401)["message"] == EXPIRED
    assert_cors(answer)


def test_status_refuses_a_refresh_token_as_access(server: LiveServer, carol: httpx.Client) -> None:
    """§1.4: a token of the wrong `typ` gives 401."""
    refresh = carol.cookies["refresh_token"]
    answer = send(server, "GET", "/auth/status", cookies={"access_token": refresh})
    assert assert_error(answer, 401)["message"] == EXPIRED


def test_case_13_refresh_rotates_both_tokens(server: LiveServer, carol: httpx.Client) -> None:
    """#13: `GET /auth/refresh` → 200, ⊇ `{message, access_exp}`; both cookies set; the new
    refresh token differs from the old one."""
    old = tokens_of(carol)
    before = now_ms()
    answer = send(
        server,
        "GET",
        "/auth/refresh",
        cookies={"refresh_token": old["refresh_token"]},
        headers=FROM_UI,
    )
    assert answer.status_code == 200, answer.text
    assert_cors(answer)
    body = answer.json()
    assert {"message", "access_exp"} <= set(body)
    assert body["message"] == "User refreshed"
    assert type(body["access_exp"]) is int
    assert abs(body["access_exp"] - before - 600_000) < 5_000
    cookies = cookies_set(answer)
    assert {"access_token", "refresh_token"} <= set(cookies)
    new_refresh = cookies["refresh_token"]["value"]
    assert new_refresh and new_refresh != old["refresh_token"]
    assert jti(new_refresh) != jti(old["refresh_token"])
    new_access = cookies["access_token"]["value"]
    status = send(server, "GET", "/auth/status", cookies={"access_token": new_access})
    assert status.json()["username"] == "carol"
    # The new refresh token refreshes in its turn.
    again = send(server, "GET", "/auth/refresh", cookies={"refresh_token": new_refresh})
    assert again.status_code == 200, again.text


def test_refresh_without_cookie(server: LiveServer) -> None:
    """§3.4: `GET /auth/refresh` without the cookie → 401 `No token provided` (the UI's
    first call)."""
    answer = send(server, "GET", "/auth/refresh", headers=FROM_UI)
    assert assert_error(answer, 401)["message"] == "No token provided"
    assert_cors(answer)


def test_replaced_refresh_token_within_the_grace_window(
    server: LiveServer, carol: httpx.Client
) -> None:
    """§3.4: the replaced refresh token, presented within the grace window, returns the
    current pair again; the login stands."""
    old = tokens_of(carol)
    first = send(server, "GET", "/auth/refresh", cookies={"refresh_token": old["refresh_token"]})
    assert first.status_code == 200, first.text
    current = cookies_set(first)["refresh_token"]["value"]

    again = send(server, "GET", "/auth/refresh", cookies={"refresh_token": old["refresh_token"]})
    assert again.status_code == 200, again.text
    cookies = cookies_set(again)
    assert jti(cookies["refresh_token"]["value"]) == jti(current)
    status = send(
        server, "GET", "/auth/status", cookies={"access_token": cookies["access_token"]["value"]}
    )
    assert status.status_code == 200, status.text
    # The login was not revoked: its current refresh token still rotates.
    later = send(server, "GET", "/auth/refresh", cookies={"refresh_token": current})
    assert later.status_code == 200, later.text


def test_case_14_replaced_refresh_token_after_the_grace_window(
    server: LiveServer, carol: httpx.Client
) -> None:
    """#14: `GET /auth/refresh` with the replaced token after the grace window (61 s after #13
    by default; the window is shortened here) → 401; #13's login is revoked: `GET
    /auth/status` with its access token gives 401."""
    old = tokens_of(carol)
    rotated = send(server, "GET", "/auth/refresh", cookies={"refresh_token": old["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    new = {name: c["value"] for name, c in cookies_set(rotated).items()}
    assert (
        send(
            server, "GET", "/auth/status", cookies={"access_token": new["access_token"]}
        ).status_code
        == 200
    )

    time.sleep(GRACE_SECONDS + 1.0)
    reused = send(
        server,
        "GET",
        "/auth/refresh",
        cookies={"refresh_token": old["refresh_token"]},
        headers=FROM_UI,
    )
    assert assert_error(reused, 401)["message"] == EXPIRED
    assert_cors(reused)
    for access in (new["access_token"], old["access_token"]):
        status = send(server, "GET", "/auth/status", cookies={"access_token": access})
        assert_error(status, 401)
    stolen = send(server, "GET", "/auth/refresh", cookies={"refresh_token": new["refresh_token"]})
    assert_error(stolen, 401)


def test_case_15_logout_revokes_the_login(server: LiveServer, carol: httpx.Client) -> None:
    """#15: `DELETE /auth/logout`, then `GET /auth/status` sending the old access token →
    200, then 401; cookies cleared with `Max-Age=0`."""
    old = tokens_of(carol)
    answer = carol.delete("/auth/logout", headers=FROM_UI)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"message": "User logged out"}
    assert_cors(answer)
    cookies = cookies_set(answer)
    for name in ("access_token", "refresh_token"):
        assert cookies[name]["value"] in ("", '""'), name
        assert cookies[name]["max-age"] == "0", name
        assert cookies[name]["path"] == "/", name
        assert parsedate_to_datetime(cookies[name]["expires"]) < datetime.now(UTC), name
    status = send(server, "GET", "/auth/status", cookies={"access_token": old["access_token"]})
    assert assert_error(status, 401)["message"] == EXPIRED
    refresh = send(server, "GET", "/auth/refresh", cookies={"refresh_token": old["refresh_token"]})
    assert_error(refresh, 401)


def test_logout_without_cookies_still_clears_them(server: LiveServer) -> None:
    """§3.6: `DELETE /auth/logout` without cookies → 401 `No token provided`, and the clearing
    `Set-Cookie` headers are sent anyway."""
    answer = send(server, "DELETE", "/auth/logout", headers=FROM_UI)
    assert assert_error(answer, 401)["message"] == "No token provided"
    assert_cors(answer)
    cookies = cookies_set(answer)
    assert {cookies[n]["max-age"] for n in ("access_token", "refresh_token")} == {"0"}


def test_logout_with_the_refresh_cookie_alone(server: LiveServer, carol: httpx.Client) -> None:
    """§3.6: logout accepts either cookie; the refresh token alone revokes the login."""
    old = tokens_of(carol)
    answer = send(server, "DELETE", "/auth/logout", cookies={"refresh_token": old["refresh_token"]})
    assert answer.status_code == 200, answer.text
    status = send(server, "GET", "/auth/status", cookies={"access_token": old["access_token"]})
    assert_error(status, 401)


def test_logout_accepts_an_expired_access_token(server: LiveServer, carol: httpx.Client) -> None:
    """§3.6: logout accepts an expired token and still revokes its login."""
    old = tokens_of(carol)
    claims = jwt.decode(old["access_token"], options={"verify_signature": False})
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    expired, _ = tokens.issue(
        SigningKeys.in_directory(server.data_dir),
        int(claims["sub"]),
        claims["sid"],
        "access",
        an_hour_ago - timedelta(minutes=10),
        an_hour_ago,
    )
    refused = send(server, "GET", "/auth/status", cookies={"access_token": expired})
    assert assert_error(refused, 401)["message"] == EXPIRED
    answer = send(server, "DELETE", "/auth/logout", cookies={"access_token": expired})
    assert answer.status_code == 200, answer.text
    refresh = send(server, "GET", "/auth/refresh", cookies={"refresh_token": old["refresh_token"]})
    assert_error(refresh, 401)


def test_logout_revokes_only_its_own_login(server: LiveServer) -> None:
    """§3.3, §3.6: each login stands alone; logging one out leaves the user's others."""
    with closing(login(server, "carol")) as first, closing(login(server, "carol")) as second:
        assert first.delete("/auth/logout").status_code == 200
        assert assert_error(first.get("/auth/status"), 401)["message"] == "No token provided"
        answer = second.get("/auth/status")
        assert answer.status_code == 200, answer.text


def test_case_22_submit_without_cookies(server: LiveServer) -> None:
    """#22: `POST /jobs/direct` without cookies → 401, message `No token provided`."""
    answer = send(server, "POST", "/jobs/direct", json=fixture_body(ntasks=1), headers=FROM_UI)
    assert assert_error(answer, 401)["message"] == "No token provided"
    assert_cors(answer)


def test_case_62_unknown_route_and_wrong_method(server: LiveServer) -> None:
    """#62: `GET /nosuch`; `POST /` with an allowed Origin → 404; 405; JSON envelope with
    CORS headers."""
    missing = send(server, "GET", "/nosuch", headers=FROM_UI)
    assert set(assert_error(missing, 404)) == {"message", "status_code"}
    assert missing.headers["content-type"].startswith("application/json")
    assert_cors(missing)
    wrong = send(server, "POST", "/", json={}, headers=FROM_UI)
    assert set(assert_error(wrong, 405)) == {"message", "status_code"}
    assert wrong.headers["content-type"].startswith("application/json")
    assert_cors(wrong)


def test_cookie_bearing_write_from_a_foreign_origin(
    server: LiveServer, carol: httpx.Client
) -> None:
    """§1.9: a POST, PUT or DELETE that carries an auth cookie and a foreign `Origin` → 403
    `Origin not allowed`, and nothing is done."""
    submit = carol.post(
        "/jobs/direct", json=fixture_body(ntasks=1), headers={"Origin": EVIL_ORIGIN}
    )
    assert assert_error(submit, 403)["message"] == "Origin not allowed"
    assert "access-control-allow-origin" not in submit.headers
    listed = carol.get("/user/simulations")
    assert listed.status_code == 200, listed.text
    assert listed.json()["simulations_count"] == 0

    logout = carol.delete("/auth/logout", headers={"Origin": EVIL_ORIGIN})
    assert assert_error(logout, 403)["message"] == "Origin not allowed"
    assert carol.get("/auth/status").status_code == 200  # the login was not revoked


def test_writes_from_allowed_own_or_no_origin_pass_the_guard(
    server: LiveServer, carol: httpx.Client
) -> None:
    """§1.9: the guard spares the UI's origin, the server's own origin and scripts that send
    no `Origin`; a foreign origin without an auth cookie is not refused either."""
    update = {"profile_note": "x"}
    for headers in ({"Origin": UI_ORIGIN}, {"Origin": server.base_url}, {}):
        answer = carol.post("/user/update", json=update, headers=headers)
        assert answer.status_code == 200, (headers, answer.text)
    anonymous = send(
        server,
        "POST",
        "/auth/login",
        json={"username": "carol", "password": PASSWORD},
        headers={"Origin": EVIL_ORIGIN},
    )
    assert anonymous.status_code == 202, anonymous.text
    assert "access-control-allow-origin" not in anonymous.headers


def test_case_16_login_survives_a_restart(server: LiveServer, alice: httpx.Client) -> None:
    """#16: log in, restart the server, `GET /auth/status` with the same cookie → 200, keys
    `{message, username}` (the signing keys persist in the data directory).

    Last in the module: it restarts the module's server."""
    with closing(login(server, "alice")) as client:
        before = client.get("/auth/status")
        assert before.status_code == 200, before.text
        server.stop()
        server.start()
        answer = client.get("/auth/status", headers=FROM_UI)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"message": "User status", "username": "alice"}
        assert_cors(answer)
        refreshed = client.get("/auth/refresh")
        assert refreshed.status_code == 200, refreshed.text
