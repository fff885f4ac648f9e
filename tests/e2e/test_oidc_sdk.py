"""The official `authpi-idp` SDK, unchanged, against the running platform: authorization URL,
a person signing in through the hosted portal's HTML forms, the callback exchange (state and
nonce checked by the SDK), refresh, userinfo, revocation and the logout URL, for a confidential
web client and for a public client."""

from __future__ import annotations

import pytest
from authpi_idp import IdpClient
from authpi_idp.errors import OAuthError, RefreshError
from authpi_idp.types import LogoutOptions

from authpi.platform.testing.login import (
    PASSWORD,
    SCOPES,
    LoginTenant,
    PortalBrowser,
    login_tenant,
    new_email,
    query_of,
)


@pytest.fixture
async def tenant(platform):
    made = await login_tenant(platform, name="sdk")
    yield made
    await made.admin.close()


async def signed_up(t: LoginTenant, name: str = "Grace Hopper") -> tuple[str, str]:
    """(email, user id) of a person who signs up on the portal now."""
    before = {u.user_id for u in (await t.admin.issuer(t.issuer_id).users.list()).data}
    email = new_email("sdk")
    async with PortalBrowser() as b:
        created = await b.sign_up(t.issuer_url, email, PASSWORD, name=name)
        assert created.status_code == 303, created.text
    after = {u.user_id for u in (await t.admin.issuer(t.issuer_id).users.list()).data}
    [user_id] = after - before
    return email, user_id


async def test_confidential_client_with_the_sdk(tenant: LoginTenant):
    t = tenant
    email, user_id = await signed_up(t)
    sdk = IdpClient(
        issuer_url=t.issuer_url, client_id=t.web_id, client_secret=t.web_secret,
        redirect_uri=t.redirect_uri,
    )  # fmt: skip
    async with sdk, PortalBrowser() as person:
        auth = sdk.create_authorization_url(scopes=SCOPES)
        callback = await person.authorize(auth.url, email, PASSWORD, redirect_uri=t.redirect_uri)
        assert query_of(callback)["state"] == auth.state

        agent = await sdk.exchange_callback(callback, auth)  # checks state and nonce
        assert agent.id == user_id and agent.type == "user"
        assert agent.email == email and agent.email_verified is False
        assert agent.organizations == []
        assert agent.tokens.id_token and agent.tokens.refresh_token
        assert (await t.introspect(agent.tokens.access_token))["active"] is True

        # A forged callback (another state) is refused by the SDK before any exchange.
        with pytest.raises(OAuthError) as forged:
            await sdk.exchange_callback(callback.replace(auth.state, "not-the-state"), auth)
        assert forged.value.error == "invalid_state"

        refreshed = await sdk.refresh(agent)
        assert refreshed.id == user_id
        assert refreshed.tokens.refresh_token != agent.tokens.refresh_token
        assert refreshed.tokens.access_token != agent.tokens.access_token

        info = await sdk.get_user_info(refreshed)
        assert info.sub == user_id and info.email == email and info.name == "Grace Hopper"

        # Revoking the access token ends it at once; the refresh token still works.
        await sdk.revoke_token(refreshed.tokens.access_token, "access_token")
        assert (await t.introspect(refreshed.tokens.access_token))["active"] is False
        with pytest.raises(OAuthError):
            await sdk.get_user_info(refreshed)
        current = await sdk.refresh(refreshed)
        assert (await sdk.get_user_info(current)).sub == user_id

        # The logout URL the SDK builds ends the session and returns to the registered URI.
        logout = sdk.create_logout_url(
            LogoutOptions(
                id_token_hint=current.tokens.id_token, post_logout_redirect_uri=t.post_logout_uri,
                state="sdk-bye",
            )
        )  # fmt: skip
        out = await person.get(logout)
        assert out.status_code in (302, 303)
        assert out.headers["location"] == f"{t.post_logout_uri}?state=sdk-bye"
        with pytest.raises(RefreshError) as after:
            await sdk.refresh(current)
        assert after.value.error == "invalid_grant"
        assert (await t.introspect(current.tokens.refresh_token))["active"] is False


async def test_public_client_with_the_sdk_exchange_code_and_revoked_refresh(tenant: LoginTenant):
    t = tenant
    email, user_id = await signed_up(t, name="Katherine Johnson")
    sdk = IdpClient(issuer_url=t.issuer_url, client_id=t.spa_id, redirect_uri=t.redirect_uri)
    async with sdk, PortalBrowser() as person:
        auth = sdk.create_authorization_url(scopes=SCOPES, state="spa-state-1")
        callback = await person.authorize(auth.url, email, PASSWORD, redirect_uri=t.redirect_uri)
        code = query_of(callback)["code"]
        agent = await sdk.exchange_code(code, auth.code_verifier)
        assert agent.id == user_id and agent.email == email

        # The same person again: the browser's session signs in without the password, and the
        # consent given before is remembered.
        again = sdk.create_authorization_url(scopes=SCOPES)
        trail_before = len(person.trail)
        callback = await person.authorize(again.url, email, "", redirect_uri=t.redirect_uri)
        assert len(person.trail) == trail_before + 1  # /authorize answered with the callback
        second = await sdk.exchange_callback(callback, again)
        assert second.id == user_id

        # Revoking the refresh token (the public client authenticates with its id) ends it.
        assert second.tokens.refresh_token is not None
        await sdk.revoke_token(second.tokens.refresh_token, "refresh_token")
        with pytest.raises(RefreshError) as refused:
            await sdk.refresh(second)
        assert refused.value.error == "invalid_grant"
        # The first sign-in's tokens are another family: untouched.
        assert (await sdk.refresh(agent)).id == user_id
