"""What each portal page does, without the web framework: sign-in with a password, sign-up
under the issuer's signup policy, consent, email verification, password reset, login links and
organization invitations (idp-api.md 10.3, 12.6). Each step answers a `Page` to render or a
`Redirect` to follow; the api layer (authpi.token.api.portal) turns them into HTTP.

`Portal` composes one class per flow, each in its own module, which also states the rules it
keeps: portal.login (password sign-in, lockout, verified-email check), portal.signup (signup
policies, the taken-address answer), portal.recovery (forgot/reset password, login links),
portal.verification (verify-email), portal.consent (consent, signed out), portal.invitations
(an organization invitation's page, and the sign-in or sign-up that accepts it), portal.mfa (the
second-factor page; when one is needed: portal.second_factor), portal.sso (the organization SSO
sign-in); portal.common holds what they share."""

from __future__ import annotations

from authpi.token.portal.consent import ConsentFlows
from authpi.token.portal.login import LoginFlows
from authpi.token.portal.mfa import MfaFlows
from authpi.token.portal.recovery import RecoveryFlows
from authpi.token.portal.signup import SignupFlows
from authpi.token.portal.sso import SsoFlows


class Portal(LoginFlows, SignupFlows, RecoveryFlows, ConsentFlows, MfaFlows, SsoFlows):
    """Every portal step, built once by the service from `PortalBase`'s dependencies."""
