"""Webhooks of an account (platform.md 7.1, 7.2; contract 4.10, 5.12): list (filter `status`,
`deleted` included), create, get, update (If-Match) and delete. Scopes `webhooks:read|write|
delete`; an update that issues a secret needs `webhooks:manage` (core-api.md 5.2: secret
regeneration): a regeneration, a replaced secret, or an auth type gaining a secret it lacked."""

from __future__ import annotations

from litestar import Response, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.errors import InsufficientScope
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.webhook.api.models import (
    WebhookCreate,
    WebhookListItem,
    WebhookOut,
    WebhookPatch,
    WebhookWithSecrets,
    check_create,
    check_patch,
)
from authpi.webhook.domain.options import bad
from authpi.webhook.handlers.webhooks import Webhooks
from authpi.webhook.queries.webhooks import WebhookRow

WEBHOOKS = "/v1/accounts/{account_id:str}/webhooks"
WEBHOOK = WEBHOOKS + "/{webhook_id:str}"
COLLECTION = "webhooks"
TAGS = ["Webhooks"]
READ = [require_scope("webhooks:read")]
WRITE = [require_scope("webhooks:write")]
DELETE = [require_scope("webhooks:delete")]
MANAGE = "webhooks:manage"
LIST_STATUSES = ("active", "disabled", "failing", "deleted")


def _etag(row: WebhookRow) -> str:
    return etag_of(row.created_at, row.updated_at)


@get(WEBHOOKS, operation_id="listWebhooks", summary="List Webhooks", tags=TAGS, guards=READ)
async def list_webhooks(
    account_id: FromPath[str],
    page: InjectedPage,
    webhooks: NamedDependency[Webhooks],
    status: FromQuery[str | None] = None,
) -> Page[WebhookListItem]:
    if status is not None and status not in LIST_STATUSES:
        raise bad("status", f"must be one of {', '.join(LIST_STATUSES)}")
    after = page.after_time_id(COLLECTION)
    async with webhooks.rt.pool.connection() as conn:
        rows = await webhooks.queries.webhooks(conn, account_id, status, after, page.fetch_limit)
    listed = paginate(rows, page, COLLECTION, lambda r: (r.created_at, r.id))
    items = [WebhookListItem.of(row) for row in listed.data]
    return Page(data=items, has_more=listed.has_more, next_cursor=listed.next_cursor)


@post(WEBHOOKS, operation_id="createWebhook", summary="Create Webhook", tags=TAGS, guards=WRITE)
async def create_webhook(
    account_id: FromPath[str],
    data: JSONBody[WebhookCreate],
    principal: InjectedPrincipal,
    webhooks: NamedDependency[Webhooks],
) -> Response[One[WebhookWithSecrets]]:
    fields, auth = check_create(data, webhooks.rt.settings)
    secrets = webhooks.new_secrets(auth.signature_secret, auth.bearer_token)
    webhook_id, issued = await webhooks.create(account_id, fields, secrets,
                                               actor=principal.actor())  # fmt: skip
    row = await webhooks.get(account_id, webhook_id)
    return one(WebhookWithSecrets.issued(row, issued), etag=_etag(row), status=201)


@get(WEBHOOK, operation_id="getWebhook", summary="Get Webhook", tags=TAGS, guards=READ)
async def get_webhook(
    account_id: FromPath[str], webhook_id: FromPath[str], webhooks: NamedDependency[Webhooks]
) -> Response[One[WebhookOut]]:
    row = await webhooks.get(account_id, webhook_id)
    return one(WebhookOut.of(row), etag=_etag(row))


@patch(WEBHOOK, operation_id="updateWebhook", summary="Update Webhook", tags=TAGS, guards=WRITE)
async def update_webhook(
    account_id: FromPath[str],
    webhook_id: FromPath[str],
    data: JSONBody[WebhookPatch],
    principal: InjectedPrincipal,
    webhooks: NamedDependency[Webhooks],
    if_match: IfMatch = None,
) -> Response[One[WebhookWithSecrets]]:
    fields, auth = check_patch(data, webhooks.rt.settings)
    if auth.hands_out_secret and not principal.may(MANAGE):
        raise InsufficientScope(f"regenerating a webhook secret requires the {MANAGE} scope",
                                reason="auth.scope_missing")  # fmt: skip
    fields["may_issue_secrets"] = principal.may(MANAGE)
    secrets = webhooks.new_secrets(auth.signature_secret, auth.bearer_token)
    issued = await webhooks.update(account_id, webhook_id, fields, secrets,
                                   actor=principal.actor(), if_match=if_match)  # fmt: skip
    row = await webhooks.get(account_id, webhook_id)
    return one(WebhookWithSecrets.issued(row, issued), etag=_etag(row))


@delete(WEBHOOK, operation_id="deleteWebhook", summary="Delete Webhook", tags=TAGS,
        guards=DELETE, status_code=204)  # fmt: skip
async def delete_webhook(
    account_id: FromPath[str],
    webhook_id: FromPath[str],
    principal: InjectedPrincipal,
    webhooks: NamedDependency[Webhooks],
    if_match: IfMatch = None,
) -> Response[None]:
    await webhooks.delete(account_id, webhook_id, actor=principal.actor(), if_match=if_match)
    return no_content()


ROUTES = [list_webhooks, create_webhook, get_webhook, update_webhook, delete_webhook]


def webhooks_router(handlers: Webhooks) -> Router:
    return Router("/", route_handlers=ROUTES, dependencies={"webhooks": provide(handlers)})
