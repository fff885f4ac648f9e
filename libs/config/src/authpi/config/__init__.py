"""Typed settings for every AuthPI process, parsed once from `AUTHPI_*` environment variables."""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from email.utils import getaddresses
from pathlib import Path
from urllib.parse import urlsplit

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    database_url: str | None = None
    nats_url: str | None = None
    # The distributed topology: one PostgreSQL role per service, `<namespace>_<service>`
    # (`authpi migrate` creates them). AUTHPI_DB_PASSWORD_<SERVICE> sets a role's password when
    # `authpi migrate` runs, and is what a process connects as that role with, for each service
    # it runs beside the one named in AUTHPI_DATABASE_URL. Service name -> password.
    database_passwords: dict[str, str] = {}
    # JSON file of NATS credentials by identity (authpi.messaging.auth); generated into data_dir
    # with the embedded server. Unset with nats_url: no NATS authentication (development only).
    nats_credentials_file: Path | None = None
    api_url: str = "http://127.0.0.1:8000"
    idp_url: str = "http://127.0.0.1:8001"
    # Where the two public ports bind when that is not the public URL's host and port (behind an
    # ingress or a port mapping: AUTHPI_API_URL=https://api.example.com,
    # AUTHPI_API_LISTEN_URL=http://0.0.0.0:8000). Unset: the public URL's host and port.
    api_listen_url: str | None = None
    idp_listen_url: str | None = None
    # Operations endpoints (`/readyz`, `/metrics`): their own port, on the loopback interface
    # unless configured otherwise; never on the public ports. Port 0 picks a free port.
    ops_url: str = "http://127.0.0.1:0"
    # The distributed topology (`authpi serve <service>`): where a service's internal listener
    # binds, which serves its Core API routes to the gateway only (signed principal), and where
    # the gateway finds each service's (AUTHPI_SERVICE_URLS="directory=http://host:port,...").
    internal_url: str | None = None
    service_urls: tuple[tuple[str, str], ...] = ()
    # Key-encryption keys, base64 (urlsafe) 32 bytes each, oldest first (the last one wraps):
    # inline (AUTHPI_KEK) or in a file kept apart from the data (AUTHPI_KEK_FILE). With neither,
    # `make run` generates one into data_dir: for development only, since a backup of the data
    # folder then carries the key that protects it.
    kek: str | None = None
    kek_file: Path | None = None
    log_format: str = "auto"  # auto | json | console
    log_level: str = "info"
    # Subject and schema namespace: lets many deployments (or test runs) share one NATS/PostgreSQL.
    namespace: str = "authpi"
    region: str = "default"
    # Scales the rate limits of both ports (core-api.md 2.5); load tests and CI raise it.
    rate_limit_multiplier: float = 1.0
    # Requests a minute per client address to the IdP token endpoints (token, introspect,
    # revoke, keyinfo) in each process; discovery and JWKS get twice as many. 0 turns it off.
    idp_rate_limit: int = 6000
    # Proxies (CIDRs) whose forwarded header names the client; from any other peer it is ignored.
    trusted_proxies: tuple[str, ...] = ()
    # The header those proxies append: `x-forwarded-for` or `forwarded` (RFC 7239).
    forwarded_header: str = "x-forwarded-for"
    # Processes serving the IdP port in the all-in-one topology: the main process plus N-1 IdP
    # workers sharing its listening socket (DESIGN.md 5). 1 serves everything in one process.
    # From the environment (`authpi up`, `make run`) it defaults to the cores this process may
    # use (`available_cores`), so the shipped configuration is the fast one; `authpi serve` and a
    # Settings built in code (tests) serve in one process unless told otherwise.
    idp_workers: int = 1
    # Debugging and tests only: IdP responses carry `X-Authpi-Worker: <pid>`.
    worker_header: bool = False
    # Dead letters other than security events are swept once older than this.
    dead_letter_retention_days: int = 30
    # Argon2id cost of user passwords (OWASP minimum by default: 19 MiB, 2 passes, 1 lane).
    # Hashes made with other parameters still verify, and are rehashed on the next sign-in.
    argon2_memory_kib: int = 19_456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    # Outgoing mail: smtp://[user:password@]host[:port][?starttls=require|auto|off] or
    # smtps://… (authpi.web.mail). Unset: `make run` captures mail in the development sink and
    # shows it at the Core API's /dev/mail.
    smtp_url: str | None = None
    mail_from: str = "AuthPI <no-reply@localhost>"
    # Webhook targets (platform.md 7.1 URL rules, the SSRF guard). By default only https URLs whose
    # host resolves to public addresses. Development (`make run`) allows plain http and loopback
    # or private targets, and says so in its start-up log; production leaves both off.
    webhooks_allow_insecure: bool = False
    webhooks_allow_private: bool = False
    # Organization SSO (core-api.md 3.16): the upstream IdPs' issuer URLs must be https. Development
    # (`make run`) also allows plain http (an IdP on loopback), and says so in its start-up log.
    sso_allow_insecure: bool = False
    # Webhook delivery (platform.md 7.6): the waits in seconds after attempts 1, 2, … (the last
    # one repeats for longer budgets; each gets ±10 % jitter), the limit of one attempt, and the
    # attempts in flight per webhook and in all (AUTHPI_WEBHOOKS_CONCURRENCY=`per,total`).
    webhooks_retry_delays: tuple[int, ...] = (60, 300, 1800, 7200, 21600, 43200, 86400)
    webhooks_timeout_seconds: float = 10.0
    webhooks_concurrency: int = 16
    webhooks_concurrency_total: int = 512
    # Billing (platform.md 5): whether writes of accounts out of prepaid credit are refused with a
    # 402 (`gated` accounts). Off by default for a self-hosted deployment: every account is then
    # `ungated` (OP-9). The rate card is versioned JSON (authpi.billing.domain.rates), inline or
    # in a file; unset, the documented rates of 5.5. `billing_metering` off stops the metering
    # consumer (usage is then not charged); `billing_close_grace_s` is how long after an hour
    # ends its usage is closed into ledger entries.
    billing_enforcement: bool = False
    billing_rates: str | None = None
    billing_rates_file: Path | None = None
    billing_metering: bool = True
    billing_close_grace_s: int = 120
    # x402 top-ups (platform.md 5.6-5.9): the EVM node settlements go through (JSON-RPC), the one
    # network (CAIP-2) and token they are taken in with its EIP-712 domain name and version, the
    # treasury that receives them, and the settlement key that pays gas (inline or in a file;
    # configuration only, never an event). `billing_facilitator_url`: an external facilitator's
    # base URL to verify and settle instead of this service (OP-12). `billing_local_chain`
    # (`make run` opt-in): start Anvil, deploy the EIP-3009 test token, and use both.
    billing_rpc_url: str | None = None
    billing_network: str = "eip155:8453"
    billing_asset: str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
    billing_asset_name: str = "USD Coin"
    billing_asset_version: str = "2"
    billing_pay_to: str | None = None
    billing_settlement_key: str | None = None
    billing_settlement_key_file: Path | None = None
    billing_facilitator_url: str | None = None
    billing_local_chain: bool = False
    billing_max_timeout_s: int = 300
    # Test only, never in a deployment: after a settlement's receipt, wait forever before the
    # ledger write (the crash window a test kills the process in; the recovery task credits the
    # payment after a restart).
    billing_test_pause_after_settlement: bool = False
    # The audit log (Events API) keeps events this many days (platform.md 8: 90 by default).
    events_retention_days: int = 90

    @property
    def bootstrap_path(self) -> Path:
        return self.data_dir / "bootstrap.json"


DB_PASSWORD_PREFIX = "AUTHPI_DB_PASSWORD_"


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    e = os.environ if env is None else env
    data_dir = Path(e.get("AUTHPI_DATA_DIR") or Path.cwd() / ".authpi").absolute()
    return Settings(
        data_dir=data_dir,
        database_url=e.get("AUTHPI_DATABASE_URL") or None,
        nats_url=e.get("AUTHPI_NATS_URL") or None,
        database_passwords={
            k.removeprefix(DB_PASSWORD_PREFIX).lower(): v
            for k, v in e.items()
            if k.startswith(DB_PASSWORD_PREFIX) and v
        },
        nats_credentials_file=_path(e.get("AUTHPI_NATS_CREDENTIALS_FILE")),
        api_url=(e.get("AUTHPI_API_URL") or "http://127.0.0.1:8000").rstrip("/"),
        idp_url=(e.get("AUTHPI_IDP_URL") or "http://127.0.0.1:8001").rstrip("/"),
        api_listen_url=_url(e.get("AUTHPI_API_LISTEN_URL") or None, "AUTHPI_API_LISTEN_URL"),
        idp_listen_url=_url(e.get("AUTHPI_IDP_LISTEN_URL") or None, "AUTHPI_IDP_LISTEN_URL"),
        ops_url=(e.get("AUTHPI_OPS_URL") or "http://127.0.0.1:8002").rstrip("/"),
        internal_url=_url(e.get("AUTHPI_INTERNAL_URL") or None, "AUTHPI_INTERNAL_URL"),
        service_urls=_service_urls(e.get("AUTHPI_SERVICE_URLS") or ""),
        kek=e.get("AUTHPI_KEK") or None,
        kek_file=_kek_file(e),
        log_format=e.get("AUTHPI_LOG_FORMAT", "auto"),
        log_level=e.get("AUTHPI_LOG_LEVEL", "info"),
        namespace=e.get("AUTHPI_NAMESPACE", "authpi"),
        region=e.get("AUTHPI_REGION", "default"),
        rate_limit_multiplier=float(e.get("AUTHPI_RATE_LIMIT_MULTIPLIER", "1")),
        idp_rate_limit=_count(e.get("AUTHPI_IDP_RATE_LIMIT") or "6000", "AUTHPI_IDP_RATE_LIMIT"),
        trusted_proxies=_networks(e.get("AUTHPI_TRUSTED_PROXIES", "")),
        forwarded_header=_forwarded_header(e.get("AUTHPI_FORWARDED_HEADER") or "x-forwarded-for"),
        idp_workers=_positive_int(
            e.get("AUTHPI_IDP_WORKERS") or str(available_cores()), "AUTHPI_IDP_WORKERS"
        ),
        worker_header=_flag(e.get("AUTHPI_WORKER_HEADER", "")),
        dead_letter_retention_days=_positive_int(
            e.get("AUTHPI_DEAD_LETTER_RETENTION_DAYS") or "30", "AUTHPI_DEAD_LETTER_RETENTION_DAYS"
        ),
        argon2_memory_kib=_int_at_least(
            e.get("AUTHPI_ARGON2_MEMORY_KIB") or "19456", "AUTHPI_ARGON2_MEMORY_KIB", 8,
            "a number of KiB of at least 8",
        ),
        argon2_time_cost=_positive_int(
            e.get("AUTHPI_ARGON2_TIME_COST") or "2", "AUTHPI_ARGON2_TIME_COST"
        ),
        argon2_parallelism=_positive_int(
            e.get("AUTHPI_ARGON2_PARALLELISM") or "1", "AUTHPI_ARGON2_PARALLELISM"
        ),
        smtp_url=_smtp_url(e.get("AUTHPI_SMTP_URL") or None),
        mail_from=_mail_from(e.get("AUTHPI_MAIL_FROM") or "AuthPI <no-reply@localhost>"),
        webhooks_allow_insecure=_flag(e.get("AUTHPI_WEBHOOKS_ALLOW_INSECURE", "")),
        webhooks_allow_private=_flag(e.get("AUTHPI_WEBHOOKS_ALLOW_PRIVATE", "")),
        sso_allow_insecure=_flag(e.get("AUTHPI_SSO_ALLOW_INSECURE", "")),
        webhooks_retry_delays=_delays(e.get("AUTHPI_WEBHOOKS_RETRY_DELAYS") or ""),
        webhooks_timeout_seconds=_seconds(
            e.get("AUTHPI_WEBHOOKS_TIMEOUT_SECONDS") or "10", "AUTHPI_WEBHOOKS_TIMEOUT_SECONDS"
        ),
        webhooks_concurrency=_concurrency(e.get("AUTHPI_WEBHOOKS_CONCURRENCY") or "")[0],
        webhooks_concurrency_total=_concurrency(e.get("AUTHPI_WEBHOOKS_CONCURRENCY") or "")[1],
        billing_enforcement=_flag(e.get("AUTHPI_BILLING_ENFORCEMENT", "")),
        billing_rates=e.get("AUTHPI_BILLING_RATES") or None,
        billing_rates_file=_path(e.get("AUTHPI_BILLING_RATES_FILE")),
        billing_metering=e.get("AUTHPI_BILLING_METERING", "on").strip().lower()
        not in ("0", "false", "no", "off"),
        billing_close_grace_s=_count(
            e.get("AUTHPI_BILLING_CLOSE_GRACE_S") or "120", "AUTHPI_BILLING_CLOSE_GRACE_S"
        ),
        billing_rpc_url=e.get("AUTHPI_BILLING_RPC_URL") or None,
        billing_network=e.get("AUTHPI_BILLING_NETWORK") or "eip155:8453",
        billing_asset=e.get("AUTHPI_BILLING_ASSET") or "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        billing_asset_name=e.get("AUTHPI_BILLING_ASSET_NAME") or "USD Coin",
        billing_asset_version=e.get("AUTHPI_BILLING_ASSET_VERSION") or "2",
        billing_pay_to=e.get("AUTHPI_BILLING_PAY_TO") or None,
        billing_settlement_key=e.get("AUTHPI_BILLING_SETTLEMENT_KEY") or None,
        billing_settlement_key_file=_path(e.get("AUTHPI_BILLING_SETTLEMENT_KEY_FILE")),
        billing_facilitator_url=e.get("AUTHPI_BILLING_FACILITATOR_URL") or None,
        billing_local_chain=_flag(e.get("AUTHPI_BILLING_LOCAL_CHAIN", "")),
        billing_max_timeout_s=_positive_int(
            e.get("AUTHPI_BILLING_MAX_TIMEOUT_S") or "300", "AUTHPI_BILLING_MAX_TIMEOUT_S"
        ),
        billing_test_pause_after_settlement=_flag(
            e.get("AUTHPI_BILLING_TEST_PAUSE_AFTER_SETTLEMENT", "")
        ),
        events_retention_days=_positive_int(
            e.get("AUTHPI_EVENTS_RETENTION_DAYS") or "90", "AUTHPI_EVENTS_RETENTION_DAYS"
        ),
    )  # fmt: skip


def available_cores(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota
    (a container's `--cpus`), rounded up; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 CPU controller here: the affinity alone
    return max(1, cores)


def read_kek(settings: Settings) -> tuple[str, Path | None]:
    """The key-encryption keys' text, and the file it was read from (None when inline). With
    neither AUTHPI_KEK nor AUTHPI_KEK_FILE, a key is generated once into the data folder."""
    if settings.kek:
        return settings.kek, None
    path = settings.kek_file
    if path is None:
        path = settings.data_dir / "kek"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode())
    try:
        return path.read_text(), path
    except FileNotFoundError:
        raise ValueError(f"AUTHPI_KEK_FILE {path} does not exist") from None


def _kek_file(e: Mapping[str, str]) -> Path | None:
    path = e.get("AUTHPI_KEK_FILE") or None
    if path and e.get("AUTHPI_KEK"):
        raise ValueError("set AUTHPI_KEK or AUTHPI_KEK_FILE, not both")
    return _path(path)


def _path(raw: str | None) -> Path | None:
    return Path(raw).absolute() if raw else None


def _positive_int(raw: str, name: str) -> int:
    return _int_at_least(raw, name, 1, "a positive integer")


def _count(raw: str, name: str) -> int:
    return _int_at_least(raw, name, 0, "a whole number")


def _int_at_least(raw: str, name: str, minimum: int, kind: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"{name} must be {kind}, not {raw!r}")
    return value


def _networks(raw: str) -> tuple[str, ...]:
    """AUTHPI_TRUSTED_PROXIES: CIDRs or addresses, separated by commas or spaces."""
    items = tuple(item for item in raw.replace(",", " ").split() if item)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"AUTHPI_TRUSTED_PROXIES: not an IP network: {item!r}") from None
    return items


def _forwarded_header(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("x-forwarded-for", "forwarded"):
        raise ValueError(
            f"AUTHPI_FORWARDED_HEADER must be x-forwarded-for or forwarded, not {raw!r}"
        )
    return value


def _url(raw: str | None, name: str) -> str | None:
    """An http(s) base URL with a host (and no path), without its trailing slash."""
    if raw is None:
        return None
    parts = urlsplit(raw.strip())
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
        raise ValueError(f"{name} must be http(s)://host[:port], not {raw!r}")
    return raw.strip().rstrip("/")


def _service_urls(raw: str) -> tuple[tuple[str, str], ...]:
    """AUTHPI_SERVICE_URLS: `service=url` pairs separated by commas (or spaces)."""
    pairs: list[tuple[str, str]] = []
    for item in raw.replace(",", " ").split():
        name, sep, url = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"AUTHPI_SERVICE_URLS: expected service=url, not {item!r}")
        checked = _url(url, f"AUTHPI_SERVICE_URLS ({name.strip()})")
        assert checked is not None
        pairs.append((name.strip(), checked))
    return tuple(pairs)


def _smtp_url(raw: str | None) -> str | None:
    """Only the form here; authpi.web.mail.SmtpTarget reads the rest (credentials, STARTTLS)."""
    if raw is None:
        return None
    parts = urlsplit(raw.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname or port == -1:
        raise ValueError("AUTHPI_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
    return raw.strip()


def _mail_from(raw: str) -> str:
    pairs = getaddresses([raw])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise ValueError(
            f"AUTHPI_MAIL_FROM must be one address, e.g. 'Name <a@b.example>': {raw!r}"
        )
    return raw.strip()


def _flag(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _delays(raw: str) -> tuple[int, ...]:
    """AUTHPI_WEBHOOKS_RETRY_DELAYS: comma-separated whole seconds (0 or more each)."""
    if not raw.strip():
        return (60, 300, 1800, 7200, 21600, 43200, 86400)
    return tuple(_count(part.strip(), "AUTHPI_WEBHOOKS_RETRY_DELAYS") for part in raw.split(","))


def _seconds(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 300:
        raise ValueError(f"{name} must be a number of seconds in (0, 300], not {raw!r}")
    return value


def _concurrency(raw: str) -> tuple[int, int]:
    """AUTHPI_WEBHOOKS_CONCURRENCY: `per_webhook` or `per_webhook,total` (default 16,512)."""
    if not raw.strip():
        return 16, 512
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) > 2:
        raise ValueError("AUTHPI_WEBHOOKS_CONCURRENCY is `per_webhook` or `per_webhook,total`")
    per = _positive_int(parts[0], "AUTHPI_WEBHOOKS_CONCURRENCY")
    total = _positive_int(parts[1], "AUTHPI_WEBHOOKS_CONCURRENCY") if len(parts) == 2 else 512
    return per, max(per, total)
