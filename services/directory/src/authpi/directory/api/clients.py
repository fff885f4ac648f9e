"""Clients of an issuer (core-api.md 3.8, contract 4.17, `Client` / `ClientListItem` /
`IssuerClientsCreateResponse` / `IssuerClientsRotateSecretResponse` in 5.5). The secret of a
confidential client appears once, inside `data`, in the create and rotate responses (2.10)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.contracts.directory import ClientConfig
from authpi.directory.api.issuers import ISSUER, Description, Name, issuer_row
from authpi.directory.api.pages import rendered
from authpi.directory.domain.client_settings import redirect_problem, to_settings
from authpi.directory.handlers.clients import Clients
from authpi.directory.handlers.issuers import require_known_ids
from authpi.directory.queries.issuers import ClientFilters, ClientRow
from authpi.errors import FieldProblem, InvalidRequest, NotFound, Unprocessable
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.metadata import check_metadata
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

CLIENTS = ISSUER + "/clients"
CLIENT = CLIENTS + "/{client_id:str}"
ClientType = Literal["spa", "native", "web", "m2m"]
Status = Literal["active", "disabled"]
LogoUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Reason = Annotated[str, msgspec.Meta(max_length=1000)]
By = Annotated[str, msgspec.Meta(max_length=200)]
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class ClientCreate(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    type: ClientType
    description: Description | None = None
    logo_url: LogoUrl | None = None
    status: Status | None = None
    settings: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class ClientPatch(msgspec.Struct, frozen=True, kw_only=True):
    name: Name | Unset = UNSET
    type: ClientType | Unset = UNSET
    description: Description | Unset | None = UNSET
    logo_url: LogoUrl | Unset | None = UNSET
    status: Status | Unset = UNSET
    status_reason: Reason | None = None
    status_by: By | None = None
    settings: dict[str, Any] | Unset | None = UNSET
    metadata: dict[str, Any] | Unset | None = UNSET


class ClientOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    status: str
    type: str
    confidential: bool
    secret_rotated_at: int | None
    name: str
    description: str | None
    logo_url: str | None
    settings: dict[str, Any]
    status_at: int | None
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: ClientRow) -> ClientOut:
        fields = {f: getattr(row, f) for f in cls.__struct_fields__ if f != "settings"}
        return cls(settings=to_settings(_config(row)), **fields)


class CreatedClient(ClientOut, frozen=True, kw_only=True, omit_defaults=True):
    secret: str | None = None  # present for confidential clients only


class ClientListItem(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    status: str
    type: str
    confidential: bool
    name: str
    description: str | None
    logo_url: str | None
    scopes: list[str]
    protocol: str
    application_type: str | None
    grant_types: list[str]
    redirect_uri_count: int
    configuration_indexed: bool
    readiness: str
    secret_rotated_at: int | None
    status_at: int | None
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: ClientRow) -> ClientListItem:
        config = _config(row)
        return cls(
            id=row.id, issuer_id=row.issuer_id, status=row.status, type=row.type,
            confidential=row.confidential, name=row.name, description=row.description,
            logo_url=row.logo_url, scopes=config.scopes, protocol="oidc",
            application_type=config.application_type, grant_types=config.grant_types,
            redirect_uri_count=len(config.redirect_uris), configuration_indexed=True,
            readiness=row.readiness, secret_rotated_at=row.secret_rotated_at,
            status_at=row.status_at, created_at=row.created_at, updated_at=row.updated_at,
        )  # fmt: skip


class RotatedSecret(msgspec.Struct, frozen=True):
    secret: str


def _config(row: ClientRow) -> ClientConfig:
    return msgspec.convert(row.config, ClientConfig)


def _check(data: ClientCreate | ClientPatch) -> None:
    check_storable(data)
    if isinstance(data.metadata, dict):
        check_metadata(data.metadata)
    if isinstance(data.logo_url, str) and (problem := redirect_problem(data.logo_url, "web")):
        field = FieldProblem(field="logo_url", code="invalid_value", message=f"logo_url {problem}")
        raise Unprocessable(field.message, reason="client.logo_url", fields=[field])


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        problem = FieldProblem(field=name, code="invalid_value",
                               message=f"{name} must be one of {', '.join(allowed)}")  # fmt: skip
        raise InvalidRequest(problem.message, reason=f"client.filter.{name}", fields=[problem])
    return value


async def client_row(
    clients: Clients, account_id: str, issuer_id: str, client_id: str
) -> ClientRow:
    await issuer_row(clients.issuers, account_id, issuer_id)
    require_known_ids(client_id)
    async with clients.rt.pool.connection() as conn:
        rows = await clients.issuers.queries.clients(
            conn, issuer_id, ClientFilters(), None, 1, client_id=client_id
        )
    if not rows:
        raise NotFound("no such client", reason="client.not_found")
    return rows[0]


def _etag(row: ClientRow) -> str:
    return etag_of(row.created_at, row.updated_at)


@get(CLIENTS, operation_id="listClients", summary="List Clients", tags=["Clients"],
     guards=[require_scope("issuers.clients:read")])  # fmt: skip
async def list_clients(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    page: InjectedPage,
    clients: NamedDependency[Clients],
    q: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    application_type: FromQuery[str | None] = None,
    readiness: FromQuery[str | None] = None,
    name: FromQuery[str | None] = None,
) -> Page[ClientListItem]:
    filters = ClientFilters(
        q=q, name=name, status=_choice("status", status, ("active", "disabled", "deleted")),
        application_type=_choice("application_type", application_type, ("web", "native")),
        readiness=_choice("readiness", readiness, ("ready", "incomplete")),
    )  # fmt: skip
    check_storable(filters)
    await issuer_row(clients.issuers, account_id, issuer_id)
    async with clients.rt.pool.connection() as conn:
        rows = await clients.issuers.queries.clients(
            conn, issuer_id, filters, page.after("clients"), page.fetch_limit
        )
    listed = paginate(rows, page, "clients", lambda r: (r.created_at, r.id))
    return rendered(listed, ClientListItem.of)


@post(CLIENTS, operation_id="createClient", summary="Create Client", tags=["Clients"],
      guards=[require_scope("issuers.clients:write")])  # fmt: skip
async def create_client(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    data: JSONBody[ClientCreate],
    principal: InjectedPrincipal,
    clients: NamedDependency[Clients],
) -> Response[One[CreatedClient]]:
    _check(data)
    fields = {**msgspec.structs.asdict(data), "status": data.status or "active",
              "settings": data.settings or {}, "metadata": data.metadata or {}}  # fmt: skip
    new = await clients.create(account_id, issuer_id, fields, actor=principal.actor())
    row = await client_row(clients, account_id, issuer_id, new.client_id)
    out = ClientOut.of(row)
    created = CreatedClient(secret=new.secret, **msgspec.structs.asdict(out))
    return one(created, etag=_etag(row), status=201)


@get(CLIENT, operation_id="getClient", summary="Get Client", tags=["Clients"],
     guards=[require_scope("issuers.clients:read")])  # fmt: skip
async def get_client(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    client_id: FromPath[str],
    clients: NamedDependency[Clients],
) -> Response[One[ClientOut]]:
    row = await client_row(clients, account_id, issuer_id, client_id)
    return one(ClientOut.of(row), etag=_etag(row))


@patch(CLIENT, operation_id="updateClient", summary="Update Client", tags=["Clients"],
       guards=[require_scope("issuers.clients:write")])  # fmt: skip
async def update_client(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    client_id: FromPath[str],
    data: JSONBody[ClientPatch],
    principal: InjectedPrincipal,
    clients: NamedDependency[Clients],
    if_match: IfMatch = None,
) -> Response[One[ClientOut]]:
    _check(data)
    fields = {f: getattr(data, f) for f in data.__struct_fields__}
    patch_ = {k: v for k, v in fields.items() if v is not UNSET}
    await clients.update(
        account_id, issuer_id, client_id, patch_, actor=principal.actor(), if_match=if_match
    )
    row = await client_row(clients, account_id, issuer_id, client_id)
    return one(ClientOut.of(row), etag=_etag(row))


@delete(CLIENT, operation_id="deleteClient", summary="Delete Client", tags=["Clients"],
        guards=[require_scope("issuers.clients:delete")], status_code=204)  # fmt: skip
async def delete_client(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    client_id: FromPath[str],
    principal: InjectedPrincipal,
    clients: NamedDependency[Clients],
    if_match: IfMatch = None,
) -> Response[None]:
    await clients.delete(account_id, issuer_id, client_id, actor=principal.actor(),
                         if_match=if_match)  # fmt: skip
    return no_content()


@post(CLIENT + "/secret/rotate", operation_id="rotateClientSecret",
      summary="Rotate Client Secret", tags=["Clients"], status_code=200,
      guards=[require_scope("issuers.clients:manage")])  # fmt: skip
async def rotate_client_secret(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    client_id: FromPath[str],
    principal: InjectedPrincipal,
    clients: NamedDependency[Clients],
    if_match: IfMatch = None,
) -> Response[One[RotatedSecret]]:
    secret = await clients.rotate_secret(
        account_id, issuer_id, client_id, actor=principal.actor(), if_match=if_match
    )
    row = await client_row(clients, account_id, issuer_id, client_id)
    return one(RotatedSecret(secret), etag=_etag(row))


ROUTES = [list_clients, create_client, get_client, update_client, delete_client,
          rotate_client_secret]  # fmt: skip
