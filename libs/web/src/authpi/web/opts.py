"""Route `opt` keys that the Core API layers read (authentication, rate limits). A route sets them
in its decorator, e.g. `@post(..., opt={RATE_CLASS: AUTH_SENSITIVE})`."""

from __future__ import annotations

from typing import Literal

# `opt={ANONYMOUS: True}`: no credential is required or read (health, metrics, /openapi.json).
ANONYMOUS = "authpi_anonymous"

# `opt={RATE_CLASS: ...}`: the rate-limit class (core-api.md 2.5). Without it the class follows
# the method: GET/HEAD are `read`, everything else `write`.
RATE_CLASS = "authpi_rate_class"

RateClass = Literal["read", "write", "auth-sensitive"]
READ: RateClass = "read"
WRITE: RateClass = "write"
AUTH_SENSITIVE: RateClass = "auth-sensitive"

# Set on every Core API route by `authpi.web.routes.owned`: the service that owns it (where the
# gateway forwards it in the distributed topology). Never set by a route itself.
SERVICE = "authpi_service"

# A GET route that the gateway may answer before litestar's router: an `authpi.web.reads.DirectRead`
# (the same answer as the route's handler, for a request with no query string).
DIRECT_READ = "authpi_direct_read"
