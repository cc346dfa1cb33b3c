"""Accounts: register, login, refresh, status, logout, Keycloak (yaptide.md §3.2–§3.8)."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep, bearer_token
from cyclotron.api.yaptide.errors import YaptideRoute
from cyclotron.api.yaptide.http import answer, epoch_ms, json_object
from cyclotron.errors import Forbidden, InputError, Unauthorized
from cyclotron.services.access import tokens
from cyclotron.services.access.accounts import Accounts, IssuedLogin, UserRecord
from cyclotron.services.access.keycloak import KeycloakVerifier
from cyclotron.services.access.tokens import TokenClaims

router = APIRouter(route_class=YaptideRoute, tags=["YAPTIDE accounts"])

ACCESS = "access_token"
REFRESH = "refresh_token"
NO_TOKEN = "No token provided"
PAST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_SESSIONS = 4096  # verified access tokens kept (all are forgotten when full)


async def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


AccountsDep = Annotated[Accounts, Depends(accounts_of)]


class Sessions:
    """Access tokens whose signature and claims were verified, by their SHA-256, until they
    expire: a status poll decodes its token once. What the database says of the login (a
    logout, a removed user, cluster access granted) is read on every request."""

    def __init__(self) -> None:
        self._known: dict[bytes, TokenClaims] = {}
        self._lock = threading.Lock()

    def verified(self, accounts: Accounts, token: str) -> TokenClaims:
        """The token's claims (401 for an invalid or expired one), verified once."""
        digest = hashlib.sha256(token.encode()).digest()
        claims = self._known.get(digest)
        if claims is not None and claims.expires > datetime.now(UTC):
            return claims
        claims = tokens.read(accounts.keys, token, "access")
        with self._lock:
            if len(self._known) >= MAX_SESSIONS:
                self._known.clear()
            self._known[digest] = claims
        return claims


async def current_login(request: Request) -> TokenClaims:
    """The verified claims of the access cookie: 401 "No token provided" without one."""
    token = request.cookies.get(ACCESS)
    if not token:
        raise Unauthorized(NO_TOKEN)
    sessions: Sessions = request.app.state.sessions
    return sessions.verified(request.app.state.accounts, token)


LoginDep = Annotated[TokenClaims, Depends(current_login)]


def user_of_login(request: Request, claims: TokenClaims) -> UserRecord:
    """The user of a verified access token while its login stands (one read: in a worker
    thread, or in a plain ``def`` route, which runs in one)."""
    accounts: Accounts = request.app.state.accounts
    return accounts.user_of_login(claims)


async def current_user(request: Request, claims: LoginDep) -> UserRecord:
    """The user of the access cookie: 401 "No token provided" without one."""
    return await run_in_threadpool(user_of_login, request, claims)


UserDep = Annotated[UserRecord, Depends(current_user)]


def _secure(request: Request, accounts: Accounts) -> bool:
    forced = accounts.settings.secure_cookies
    if forced is not None:
        return forced
    scheme = request.url.scheme
    if accounts.settings.trust_forwarded_proto:
        scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
    return scheme == "https"


def _set(response: Response, name: str, token: str, expires: datetime, secure: bool) -> None:
    seconds = max(int((expires - datetime.now(UTC)).total_seconds()), 0)
    response.set_cookie(
        name,
        token,
        max_age=seconds,
        expires=expires,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def _clear(response: Response, name: str, secure: bool) -> None:
    response.set_cookie(
        name, "", max_age=0, expires=PAST, path="/", secure=secure, httponly=True, samesite="lax"
    )


def _with_cookies(
    request: Request, accounts: Accounts, response: Response, issued: IssuedLogin
) -> Response:
    secure = _secure(request, accounts)
    _set(response, ACCESS, issued.access_token, issued.access_expires, secure)
    if issued.refresh_token is not None and issued.refresh_expires is not None:
        _set(response, REFRESH, issued.refresh_token, issued.refresh_expires, secure)
    return response


def _expiries(issued: IssuedLogin) -> dict[str, object]:
    body: dict[str, object] = {"access_exp": epoch_ms(issued.access_expires)}
    if issued.refresh_expires is not None:
        body["refresh_exp"] = epoch_ms(issued.refresh_expires)
    return body


@router.put("/auth/register", status_code=201, summary="Create a local account")
async def register(request: Request, accounts: AccountsDep, core: CoreDep) -> Response:
    body = await json_object(request, core.settings.yaptide.max_body_bytes)
    await run_in_threadpool(
        accounts.add_user, body.get("username"), body.get("password"), enforce_registration=True
    )
    return answer(request, {"message": "User created"}, 201)


@router.post("/auth/login", status_code=202, summary="Log in; sets both cookies")
async def login(request: Request, accounts: AccountsDep, core: CoreDep) -> Response:
    body = await json_object(request, core.settings.yaptide.max_body_bytes)
    address = request.client.host if request.client else ""
    issued = await run_in_threadpool(
        accounts.login, body.get("username"), body.get("password"), address
    )
    response = answer(request, {"message": "Successfully logged in", **_expiries(issued)}, 202)
    return _with_cookies(request, accounts, response, issued)


@router.get("/auth/refresh", summary="Rotate both tokens")
def refresh(request: Request, accounts: AccountsDep) -> Response:
    token = request.cookies.get(REFRESH)
    if not token:
        raise Unauthorized(NO_TOKEN)
    issued = accounts.refresh(token)
    response = answer(request, {"message": "User refreshed", **_expiries(issued)})
    return _with_cookies(request, accounts, response, issued)


@router.get("/auth/status", summary="Who is logged in")
def status(request: Request, user: UserDep) -> Response:
    return answer(request, {"message": "User status", "username": user.username})


def _logout(request: Request, accounts: Accounts) -> Response:
    access, refresh_token = request.cookies.get(ACCESS), request.cookies.get(REFRESH)
    secure = _secure(request, accounts)
    if not access and not refresh_token:
        response = answer(request, {"message": NO_TOKEN, "status_code": 401}, 401)
    else:
        accounts.logout(access, refresh_token)
        response = answer(request, {"message": "User logged out"})
    _clear(response, ACCESS, secure)
    _clear(response, REFRESH, secure)
    return response


@router.delete("/auth/logout", summary="Log out; revokes the login")
def logout(request: Request, accounts: AccountsDep) -> Response:
    return _logout(request, accounts)


@router.delete("/auth/keycloak", summary="Log out of a Keycloak login")
def keycloak_logout(request: Request, accounts: AccountsDep) -> Response:
    return _logout(request, accounts)


@router.post("/auth/keycloak", status_code=202, summary="Log in with a Keycloak token")
async def keycloak_login(request: Request, accounts: AccountsDep, core: CoreDep) -> Response:
    settings = core.settings.yaptide.keycloak
    if not settings.configured:
        raise Forbidden("Keycloak login is not available on this server")
    token = bearer_token(request)
    if token is None:
        raise Unauthorized(NO_TOKEN)
    body = await json_object(request, core.settings.yaptide.max_body_bytes)
    username = body.get("username")
    if not isinstance(username, str) or not username:
        raise InputError("Missing keys in JSON payload: username")
    verifier: KeycloakVerifier = request.app.state.keycloak
    identity = await run_in_threadpool(verifier.verify, token, username)
    user = await run_in_threadpool(
        accounts.upsert_keycloak_user, identity.username, identity.has_access
    )
    issued = await run_in_threadpool(accounts.keycloak_login, user)
    response = answer(request, {"message": "Successfully logged in", **_expiries(issued)}, 202)
    return _with_cookies(request, accounts, response, issued)
