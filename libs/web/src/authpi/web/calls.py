"""Commands one service runs on another, across processes (the distributed topology). In the
all-in-one process the host hands the objects over (platform.modules.wire): the directory's
`UserRegistry`, `InvitationAnswers` and `SsoDirectory` to the token service's portal, billing's
`Payments` to the gateway's 402 gate. When the owner runs in another process, the adapters here
stand in for them and call its internal listener, `POST /internal/calls/{export}/{method}`, signed
as the gateway signs (authpi.web.edge, with no principal); the listener runs the owner's object.

Only the methods of those contracts can be called, their arguments decoded to the contract's
types; an AuthpiError crosses as itself (class, description, reason). None of them is on a hot
path: a signup, an invitation answer, an SSO sign-in, an x402 payment."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any, cast, get_type_hints

import aiohttp
import msgspec
from litestar import MediaType, Request, Response, post
from litestar.params import FromPath
from yarl import URL

import authpi.errors as errors
from authpi.contracts.billing import Challenge, PaymentOutcome, Payments
from authpi.contracts.directory import InvitationAnswers, SsoDirectory, UserRegistry
from authpi.contracts.directory.users import SsoIdentity, SsoSignIn
from authpi.errors import AuthpiError, FieldProblem, NotFound, TemporarilyUnavailable
from authpi.web.edge import EdgeSigner
from authpi.web.opts import ANONYMOUS
from authpi.web.principal import principal_or_none

CALLS_PATH = "/internal/calls"
# export name (ServiceParts.exports) -> the contract its methods are called by
CONTRACTS: dict[str, type[Any]] = {
    "user_registry": UserRegistry, "invitations": InvitationAnswers,
    "sso_directory": SsoDirectory, "payments": Payments,
}  # fmt: skip
# export name -> the service whose process holds it
OWNERS = {"user_registry": "directory", "invitations": "directory", "sso_directory": "directory",
          "payments": "billing"}  # fmt: skip
TIMEOUT_S = 60.0


class Raised(msgspec.Struct, frozen=True, kw_only=True):
    """An AuthpiError on the wire (between processes only; the public sees the spec's body)."""

    raised: str
    description: str
    reason: str
    fields: list[FieldProblem] = []
    retry_after: int | None = None


def _raised(exc: AuthpiError) -> Raised:
    return Raised(
        raised=type(exc).__name__, description=exc.description, reason=exc.reason,
        fields=exc.fields, retry_after=exc.retry_after,
    )  # fmt: skip


def _error_of(raised: Raised) -> AuthpiError:
    cls = getattr(errors, raised.raised, None)
    if not (isinstance(cls, type) and issubclass(cls, AuthpiError)):
        cls = AuthpiError
    return cls(
        raised.description, reason=raised.reason, fields=raised.fields,
        retry_after=raised.retry_after,
    )  # fmt: skip


def _encode_hook(value: Any) -> Any:
    if isinstance(value, AuthpiError):  # PaymentOutcome.error
        return msgspec.to_builtins(_raised(value))
    raise NotImplementedError(f"cannot send {type(value).__name__}")


_encode = msgspec.json.Encoder(enc_hook=_encode_hook).encode


def _methods(contract: type[Any]) -> frozenset[str]:
    return frozenset(name for name, fn in vars(contract).items() if inspect.iscoroutinefunction(fn))


def call_routes(exports: Mapping[str, object]) -> list[Any]:
    """The internal listener's route that runs the called method of one of `exports` (those
    named in CONTRACTS; the rest are never reachable)."""
    callable_ = {name: obj for name, obj in exports.items() if name in CONTRACTS}

    @post(
        f"{CALLS_PATH}/{{export:str}}/{{method:str}}", include_in_schema=False, status_code=200,
        opt={ANONYMOUS: True},
    )  # fmt: skip
    async def call(
        request: Request[Any, Any, Any], export: FromPath[str], method: FromPath[str]
    ) -> Response[bytes]:
        # Only a service calls these, signing with no principal: a request forwarded for a
        # caller (signed with the caller's principal) never reaches another service's contract.
        if principal_or_none(request.scope) is not None:
            raise errors.AccessDenied("calls are between services only", reason="calls.forwarded")
        target = callable_.get(export)
        if target is None or method not in _methods(CONTRACTS[export]):
            raise NotFound("no such call", reason="calls.unknown")
        hints = get_type_hints(getattr(CONTRACTS[export], method))
        raw = msgspec.json.decode(await request.body(), type=dict[str, Any])
        if not set(raw) <= set(hints) - {"return"}:
            raise errors.InvalidRequest("unexpected arguments", reason="calls.arguments")
        kwargs = {name: msgspec.convert(value, hints[name]) for name, value in raw.items()}
        try:
            body = {"result": await getattr(target, method)(**kwargs)}
        except AuthpiError as exc:
            body = {"raised": _raised(exc)}
        return Response(_encode(body), media_type=MediaType.JSON)

    return [call] if callable_ else []


class Calls:
    """The calling side: one keep-alive pool to the owners' internal listeners."""

    def __init__(self, urls: Mapping[str, str], signer: EdgeSigner) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.signer = signer
        self._session: aiohttp.ClientSession | None = None

    def reaches(self, export: str) -> bool:
        return OWNERS[export] in self.urls

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, export: str, method: str, arguments: dict[str, Any]) -> Any:
        """The owner's answer, decoded to the contract's return type; its AuthpiError raised."""
        path = f"{CALLS_PATH}/{export}/{method}"
        body = _encode(arguments)
        scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode()}
        request_id = f"req_call_{os.urandom(10).hex()}"
        owner = OWNERS[export]
        headers = dict(self.signer.headers(scope, request_id, body, None, to=owner))  # type: ignore[arg-type]
        headers |= {"x-request-id": request_id, "content-type": "application/json"}
        url = URL(self.urls[owner] + path, encoded=True)
        try:
            async with self._open().post(url, data=body, headers=headers) as response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            raise TemporarilyUnavailable(
                f"the {owner} service is not reachable; try again",
                reason="calls.unreachable", retry_after=1,
            ) from None  # fmt: skip
        if status != 200:
            raise TemporarilyUnavailable(
                f"the {owner} service refused the call", reason=f"calls.status_{status}"
            )
        answer = msgspec.json.decode(payload, type=dict[str, Any])
        if "raised" in answer:
            raise _error_of(msgspec.convert(answer["raised"], Raised))
        returns = get_type_hints(getattr(CONTRACTS[export], method))["return"]
        return msgspec.convert(answer["result"], returns)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session


class RemoteDirectory:
    """The directory's UserRegistry, InvitationAnswers and SsoDirectory, in its own process."""

    def __init__(self, calls: Calls) -> None:
        self._call: Callable[..., Any] = calls.call

    async def register(
        self, *, account_id: str, issuer_id: str, username_type: str, username: str,
        profile: dict[str, Any], method: str = "signup",
    ) -> str:  # fmt: skip
        arguments = {
            "account_id": account_id, "issuer_id": issuer_id, "username_type": username_type,
            "username": username, "profile": profile, "method": method,
        }  # fmt: skip
        return await self._call("user_registry", "register", arguments)

    async def answer(
        self, issuer_id: str, token: str, *, accept: bool, user_id: str | None = None
    ) -> object:
        arguments = {"issuer_id": issuer_id, "token": token, "accept": accept, "user_id": user_id}
        return await self._call("invitations", "answer", arguments)

    async def register_invited(
        self, *, account_id: str, issuer_id: str, token: str, username: str,
        profile: dict[str, Any],
    ) -> str:  # fmt: skip
        arguments = {
            "account_id": account_id, "issuer_id": issuer_id, "token": token,
            "username": username, "profile": profile,
        }  # fmt: skip
        return await self._call("invitations", "register_invited", arguments)

    async def sign_in(
        self, *, account_id: str, issuer_id: str, org_id: str, identity: SsoIdentity
    ) -> SsoSignIn:
        arguments = {
            "account_id": account_id, "issuer_id": issuer_id, "org_id": org_id,
            "identity": identity,
        }  # fmt: skip
        return await self._call("sso_directory", "sign_in", arguments)


class RemotePayments:
    """Billing's Payments, in its own process."""

    def __init__(self, calls: Calls) -> None:
        self._call: Callable[..., Any] = calls.call

    async def challenge(self, account_id: str, resource_url: str) -> Challenge:
        arguments = {"account_id": account_id, "resource_url": resource_url}
        return await self._call("payments", "challenge", arguments)

    async def pay(
        self, account_id: str, headers: Mapping[str, str], resource_url: str
    ) -> PaymentOutcome:
        arguments = {
            "account_id": account_id, "headers": dict(headers), "resource_url": resource_url
        }  # fmt: skip
        outcome: PaymentOutcome = await self._call("payments", "pay", arguments)
        raw: object = outcome.error
        if isinstance(raw, dict):  # an AuthpiError, as Raised
            error = _error_of(msgspec.convert(cast("dict[str, Any]", raw), Raised))
            return msgspec.structs.replace(outcome, error=error)
        return outcome
