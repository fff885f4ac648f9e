"""The human-login benchmark (part of `make bench`): authorization-code exchanges/s, refresh
grants/s with rotation, and password logins/s of the hosted portal, through real HTTP against
`authpi up` started as a subprocess (AUTHPI_IDP_WORKERS processes on the IdP port, default 2),
the load generator (tests.bench.loadgen) on the same machine. Every response is checked.

Set-up (tests.bench.human): an issuer and its public SPA client, then `--users` users who sign up
on the portal with a password (GET and POST /signup with its CSRF), each one browser with its op
session cookie, and who consent once to the client (GET /authorize, GET and POST /consent).

Scenarios, in this order:
- codes: a stock of codes minted with the op session cookies (GET /authorize answers with the
  code, no password), round robin over the users, then exchanged as fast as `--connections`
  connections go (POST /token grant_type=authorization_code with PKCE S256). Codes live 60 s
  and each user keeps at most 50 live rp sessions, so the stock is sized from a short probe to
  be minted and exchanged within 50 s, and to at most 45 exchanges per user. Exchanges go in
  group commits (one transaction for those that arrive while one is in flight), so their rate
  and CPU per exchange depend on how many are in flight: the run is repeated, each with a stock
  of its own, at `--more-exchange-connections` (128 by default).
- refresh: one refresh family per connection, from the exchanges; each connection sends its
  family's current refresh token and takes the next one from the response (rotation), so every
  family is a strict chain. `max`: closed loop; `half`: each connection paced so the total is
  half the max rate, for the latency at half load. Then reuse detection, exactly: a replayed
  (rotated) token is refused and ends its family; two concurrent refreshes of one token: one
  wins.
- login: the portal's POST /login (email, password, the flow and its CSRF field and cookie),
  with flows prepared first (GET /authorize, GET /login); each answers 303 to the client with a
  code and a new op session cookie. Argon2id at the deployment's parameters (AUTHPI_ARGON2_*,
  the OWASP minimum by default) dominates it.

Checks of every response: status, the answer's shape (tokens, a new refresh token of the same
family, a code for the request's state, the cookies). Signatures and claims of a sample of the
tokens are verified against the issuer's JWKS after each run (not on the hot path of the
generator). Server CPU is utime+stime of the server's processes (authpi, PostgreSQL, NATS) per
checked response, beside what the rest of the machine spent meanwhile (`others`: on a shared
machine the rates are floors, the CPU per request is the steadier figure). PostgreSQL's own
counters give commits and rows per request.

Where the time goes: `--perf DIR` samples the server's processes with `perf record` per scenario
(by process and shared object: interpreter, PostgreSQL, OpenSSL, Argon2, kernel); `--profile DIR`
runs cProfile in the server's Python processes per scenario (SQL statements and transaction
commands per request, functions by own and cumulative time). Neither run's rates are the bench's."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import jwt
import msgspec
import uvloop

from authpi.platform.testing.process import Running
from tests.bench.human import HumanLoginTenant, human_login_platform
from tests.bench.loadgen import (
    Conn,
    Pacer,
    Response,
    ServerCpu,
    Stats,
    close_all,
    db_counters,
    db_per_request,
    open_all,
    per_request_ms,
)

CSRF_FIELD = re.compile(rb'name="csrf" value="([^"]+)"')
MAX_EXCHANGES_PER_USER = 45  # under the 50 live rp sessions a user keeps (older ones evicted)
CODE_WINDOW_S = 50.0  # mint and exchange a stock within this (codes live 60 s)
SAMPLE_EVERY = 200

# `--profile DIR`: every Python process of the server loads this (PYTHONPATH) and runs cProfile on
# its main thread (the event loop) between SIGUSR1 and SIGUSR2, dumping DIR/<tag>-<pid>.prof,
# where <tag> is the scenario named in DIR/tag. Figures of a profiled run are not the bench's.
PROFILE_HOOK = """
import os, signal
_dir = os.environ.get("BENCH_PROFILE_DIR")
if _dir:
    import collections, cProfile, json, re
    _state = {}
    _sql = collections.Counter()
    def _text(query):
        if isinstance(query, bytes):
            query = query.decode("utf-8", "replace")
        elif not isinstance(query, str):
            query = repr(query)
        query = re.sub(r"\\s+", " ", query).strip()
        return re.sub(r"\\bt[0-9a-f]{10}_", "", query)[:110]
    def _count(kind, query):
        if "p" in _state:
            _sql[kind + " " + _text(query)] += 1
    def _patch():
        from psycopg import _connection_base, _cursor_base
        run = _cursor_base.BaseCursor._execute_gen
        command = _connection_base.BaseConnection._exec_command
        def execute_gen(self, query, *args, **kwargs):
            _count("SQL", query)
            return run(self, query, *args, **kwargs)
        def exec_command(self, cmd, *args, **kwargs):
            _count("CMD", cmd)
            return command(self, cmd, *args, **kwargs)
        _cursor_base.BaseCursor._execute_gen = execute_gen
        _connection_base.BaseConnection._exec_command = exec_command
    def _start(signum, frame):
        if not _state.get("patched"):
            _patch()
            _state["patched"] = True
        _sql.clear()
        _state["p"] = cProfile.Profile()
        _state["p"].enable()
    def _stop(signum, frame):
        prof = _state.pop("p", None)
        if prof is not None:
            prof.disable()
            with open(os.path.join(_dir, "tag")) as f:
                tag = f.read().strip()
            prof.dump_stats(os.path.join(_dir, f"{tag}-{os.getpid()}.prof"))
            with open(os.path.join(_dir, f"{tag}-{os.getpid()}.sql.json"), "w") as f:
                json.dump(dict(_sql), f)
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
"""


class TokenBody(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    id_token: str
    refresh_token: str
    scope: str | None = None


class LoginUser(msgspec.Struct, kw_only=True):
    email: str
    password: str
    session: str  # the op session cookie of its browser


def b64json(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def claims_of(token: str) -> dict[str, Any]:
    return b64json(token.split(".")[1])


class Bench:
    def __init__(self, tenant: HumanLoginTenant, args: argparse.Namespace) -> None:
        self.t = tenant
        self.args = args
        split = urlsplit(tenant.idp_url)
        self.host = split.hostname or "127.0.0.1"
        self.port = split.port or 80
        self.hostport = f"{self.host}:{self.port}"
        self.base = f"/{tenant.issuer_id}"
        self.verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(self.verifier.encode()).digest()
        self.challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        self.users: list[LoginUser] = []
        self.cpu: ServerCpu | None = None
        self.samples: list[TokenBody] = []
        self.profiled: list[int] = []  # server pids to profile (--profile)
        self.perf_proc: Any = None
        self.spies: list[Any] = []  # py-spy recorders (--py-spy)

    def profile(self, tag: str | None) -> None:
        """Start (a tag) or stop (None) cProfile in the server's Python processes, and `perf
        record` of every server process (--perf)."""
        self.perf(tag)
        if not self.profiled or not self.args.profile:
            return
        import signal

        if tag is not None:
            (Path(self.args.profile) / "tag").write_text(tag)
        for pid in self.profiled:
            try:
                os.kill(pid, signal.SIGUSR1 if tag is not None else signal.SIGUSR2)
            except ProcessLookupError:
                pass

    def perf(self, tag: str | None) -> None:
        """`perf record` (sampling, low overhead) of the server's processes during one run:
        the time by shared object (the interpreter, libpq, OpenSSL, Argon2, PostgreSQL, the
        kernel) complements cProfile, which cannot see C and inflates call-heavy Python."""
        import signal
        import subprocess

        self.spy(tag)
        if not self.args.perf:
            return
        if tag is None:
            if self.perf_proc is not None:
                self.perf_proc.send_signal(signal.SIGINT)
                self.perf_proc.wait(60)
                self.perf_proc = None
            return
        pids = [str(p) for p in self.server_cpu.server_pids()]
        out = Path(self.args.perf) / f"{tag}.data"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.perf_proc = subprocess.Popen(
            ["perf", "record", "-q", "-F", "499", "-o", str(out), "-p", ",".join(pids)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def spy(self, tag: str | None) -> None:
        """`py-spy record` (sampling, the processes not paused) of each Python process of the
        server during one run, as collapsed stacks DIR/<tag>-<pid>.txt: where the interpreter's
        time goes without cProfile's per-call cost."""
        import signal
        import subprocess

        if not self.args.py_spy:
            return
        if tag is None:
            for proc in self.spies:
                proc.send_signal(signal.SIGINT)
            for proc in self.spies:
                proc.wait(60)
            self.spies = []
            return
        out = Path(self.args.py_spy)
        out.mkdir(parents=True, exist_ok=True)
        for pid in self.profiled:
            command = ["py-spy", "record", "-r", "100", "-f", "raw",
                       "-o", str(out / f"{tag}-{pid}.txt"), "-p", str(pid)]  # fmt: skip
            self.spies.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )

    @property
    def server_cpu(self) -> ServerCpu:
        assert self.cpu is not None
        return self.cpu

    # --- requests ------------------------------------------------------------------------------

    def authorize_path(self, state: str) -> str:
        params = {
            "response_type": "code", "client_id": self.t.public_client_id,
            "redirect_uri": self.t.redirect_uri, "scope": " ".join(self.t.scopes),
            "state": state, "nonce": secrets.token_urlsafe(8), "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }  # fmt: skip
        return f"{self.base}/authorize?{urlencode(params, quote_via=quote)}"

    def get(self, path: str, cookies: dict[str, str] | None = None) -> bytes:
        from tests.bench.loadgen import request

        return request("GET", self.hostport, path, cookies=cookies)

    def post(self, path: str, form: dict[str, str], cookies: dict[str, str] | None = None) -> bytes:
        from tests.bench.loadgen import request

        body = urlencode(form, quote_via=quote).encode()
        return request("POST", self.hostport, path, form=body, cookies=cookies)

    def exchange_request(self, code: str) -> bytes:
        return self.post(
            f"{self.base}/token",
            {
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": self.t.redirect_uri, "client_id": self.t.public_client_id,
                "code_verifier": self.verifier,
            },
        )  # fmt: skip

    def refresh_request(self, token: str) -> bytes:
        return self.post(
            f"{self.base}/token",
            {
                "grant_type": "refresh_token", "refresh_token": token,
                "client_id": self.t.public_client_id,
            },
        )  # fmt: skip

    @staticmethod
    def csrf_of(resp: Response) -> str:
        found = CSRF_FIELD.search(resp.body)
        if found is None:
            raise RuntimeError(f"no CSRF field in the page ({resp.status})")
        return found.group(1).decode()

    def code_of(self, resp: Response, state: str | None = None) -> str | None:
        """The code of a redirect to the client, checked against the request's state."""
        if resp.status not in (302, 303):
            return None
        location = resp.header("location") or ""
        if not location.startswith(self.t.redirect_uri + "?"):
            return None
        query = parse_qs(urlsplit(location).query)
        if state is not None and query.get("state") != [state]:
            return None
        codes = query.get("code")
        return codes[0] if codes and "session_state" in query else None

    # --- set-up: users with a password, a browser session, and consent --------------------------

    async def set_up_users(self) -> dict[str, Any]:
        started = time.perf_counter()
        count = self.args.users
        queue = deque(range(count))
        conns = await open_all(self.host, self.port, 4)

        async def worker(conn: Conn) -> None:
            page = await conn.send(self.get(f"{self.base}/signup"))
            csrf_cookie = {"authpi_csrf": page.cookies()["authpi_csrf"]}
            csrf = self.csrf_of(page)
            while queue:
                i = queue.popleft()
                email = f"bench-{i}-{secrets.token_hex(4)}@example.test"
                password = secrets.token_urlsafe(18)
                resp = await conn.send(
                    self.post(
                        f"{self.base}/signup",
                        {"name": f"Bench User {i}", "email": email, "password": password,
                         "csrf": csrf},
                        csrf_cookie,
                    )
                )  # fmt: skip
                session = resp.cookies().get("authpi_session")
                if resp.status != 303 or not session:
                    raise RuntimeError(f"signup answered {resp.status}: {resp.body[:300]!r}")
                user = LoginUser(email=email, password=password, session=session)
                await self.consent(conn, user, csrf_cookie)
                self.users.append(user)

        await asyncio.gather(*(worker(c) for c in conns))
        await close_all(conns)
        return {"users": count, "seconds": round(time.perf_counter() - started, 1)}

    async def consent(self, conn: Conn, user: LoginUser, csrf_cookie: dict[str, str]) -> None:
        cookies = {"authpi_session": user.session, **csrf_cookie}
        resp = await conn.send(self.get(self.authorize_path("consent"), cookies))
        location = resp.header("location") or ""
        if resp.status != 302 or "/consent?" not in location:
            raise RuntimeError(f"authorize before consent answered {resp.status} {location}")
        path = f"{self.base}/consent?{urlsplit(location).query}"
        page = await conn.send(self.get(path, cookies))
        if page.status != 200:
            raise RuntimeError(f"the consent page answered {page.status}")
        resp = await conn.send(
            self.post(path, {"decision": "allow", "csrf": self.csrf_of(page)}, cookies)
        )
        if self.code_of(resp, "consent") is None:
            raise RuntimeError(f"consent answered {resp.status} {resp.header('location')}")

    # --- codes ----------------------------------------------------------------------------------

    async def mint(self, count: int, start: int) -> tuple[deque[tuple[int, str]], Stats]:
        """`count` codes, round robin over the users from user `start`; (user index, code)."""
        stock: deque[tuple[int, str]] = deque()
        todo = deque(range(start, start + count))
        stats = Stats()
        conns = await open_all(self.host, self.port, self.args.connections)

        async def worker(conn: Conn) -> None:
            while todo:
                i = todo.popleft()
                u = i % len(self.users)
                state = f"s{i}"
                cookies = {"authpi_session": self.users[u].session}
                data = self.get(self.authorize_path(state), cookies)
                sent = time.perf_counter()
                resp = await conn.send(data)
                took = time.perf_counter() - sent
                code = self.code_of(resp, state)
                if code is None:
                    stats.error(f"authorize {resp.status}")
                    continue
                stats.latencies.append(took)
                stock.append((u, code))

        stats.start()
        await asyncio.gather(*(worker(c) for c in conns))
        stats.stop()
        await close_all(conns)
        return stock, stats

    async def exchange(
        self, stock: deque[tuple[int, str]], families: dict[int, str], connections: int
    ) -> tuple[Stats, dict[str, float]]:
        """Exchange the whole stock over `connections` connections; the newest refresh token per
        user goes to `families`."""
        stats = Stats()
        conns = await open_all(self.host, self.port, connections)
        requests = [(u, self.exchange_request(code)) for u, code in stock]
        todo = deque(requests)
        decoder = msgspec.json.Decoder(TokenBody)

        async def worker(conn: Conn) -> None:
            while todo:
                u, data = todo.popleft()
                sent = time.perf_counter()
                resp = await conn.send(data)
                took = time.perf_counter() - sent
                if resp.status != 200:
                    stats.error(f"exchange {resp.status} {resp.body[:80]!r}")
                    continue
                try:
                    body = decoder.decode(resp.body)
                except msgspec.ValidationError:
                    stats.error("exchange body")
                    continue
                if body.token_type.lower() != "bearer":
                    stats.error("token_type")
                    continue
                stats.latencies.append(took)
                families[u] = body.refresh_token
                if len(stats.latencies) % SAMPLE_EVERY == 1:
                    self.samples.append(body)

        before = self.server_cpu.sample()
        stats.start()
        await asyncio.gather(*(worker(c) for c in conns))
        stats.stop()
        cpu = ServerCpu.delta(before, self.server_cpu.sample())
        await close_all(conns)
        return stats, cpu

    async def codes(self, families: dict[int, str]) -> dict[str, Any]:
        """The exchanges at `--connections`, then at each of `--more-exchange-connections`: the
        group commit shares a transaction among the exchanges that arrive while one is in flight,
        so the rate depends on how many are in flight. Each run has a stock of its own; the users'
        budget of live rp sessions is shared out among the runs."""
        levels = [self.args.connections, *self.args.more_exchange_connections]
        budget = MAX_EXCHANGES_PER_USER * len(self.users)
        probe_n = min(max(500, 2 * self.args.connections), budget // (4 * len(levels)))
        stock, mint_probe = await self.mint(probe_n, 0)
        probe, _ = await self.exchange(stock, families, self.args.connections)
        mint_rate = max(mint_probe.summary()["ok_per_s"], 1.0)
        start = probe_n
        runs: list[dict[str, Any]] = []
        minted = Stats()
        for k, connections in enumerate(levels):
            rate = max((runs[-1] if runs else probe.summary())["ok_per_s"], 1.0)
            by_time = CODE_WINDOW_S / (1 / mint_rate + 1 / rate)
            share = (budget - start) // (len(levels) - k)
            settled = await self.settle()  # the last run's events relayed and audited first
            count = int(min(share, by_time, rate * self.args.seconds * 1.2))
            stock, minted = await self.mint(count, start)
            start += count
            runs.append(await self.exchange_run(stock, families, connections, k == 0, minted))
            runs[-1]["settled_before_s"] = settled
        replays = await self.replay_codes([code for _, code in list(stock)[:5]])
        runs[0]["probe"] = {"codes": probe_n, "ok_per_s": probe.summary()["ok_per_s"]}
        return {
            "exchange": runs[0], "exchange_more_connections": runs[1:],
            "mint_with_session": minted.summary(), "code_replay": replays,
        }  # fmt: skip

    async def settle(self, limit_s: float = 20.0, quiet_cores: float = 0.2) -> float:
        """Wait until the server spends under `quiet_cores` over half a second (the relay, the
        audit log and the other consumers done with what the last run wrote), at most `limit_s`:
        each run measures its own work, not the backlog of the one before. The seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < limit_s:
            before = self.server_cpu.sample()
            await asyncio.sleep(0.5)
            spent = ServerCpu.delta(before, self.server_cpu.sample())
            if sum(v for k, v in spent.items() if k in ("authpi", "postgres", "nats")) < (
                quiet_cores * 0.5
            ):
                break
        return round(time.monotonic() - began, 1)

    async def exchange_run(
        self,
        stock: deque[tuple[int, str]],
        families: dict[int, str],
        connections: int,
        profiled: bool,
        minted: Stats,
    ) -> dict[str, Any]:
        oldest = time.monotonic() - minted.summary()["seconds"]
        db = await db_counters(self.server_cpu.dsn)
        if profiled:
            self.profile("exchange")
        stats, cpu = await self.exchange(stock, families, connections)
        if profiled:
            self.profile(None)
        db_after = await db_counters(self.server_cpu.dsn)
        result = stats.summary()
        result["connections"] = connections
        result["stock"] = len(stock)
        result["oldest_code_age_at_end_s"] = round(time.monotonic() - oldest, 1)
        result["server_cpu_s"] = cpu
        result["server_cpu_ms_per_request"] = per_request_ms(cpu, stats.summary()["ok"])
        result["database_per_request"] = db_per_request(db, db_after, stats.summary()["ok"])
        return result

    async def replay_codes(self, codes: list[str]) -> dict[str, Any]:
        """A used code is refused (invalid_grant)."""
        conn = await Conn(self.host, self.port).open()
        refused = 0
        for code in codes:
            resp = await conn.send(self.exchange_request(code))
            refused += resp.status == 400 and b"invalid_grant" in resp.body
        await conn.close()
        return {"replayed": len(codes), "refused_invalid_grant": refused}

    # --- refresh --------------------------------------------------------------------------------

    async def refresh_run(self, tokens: list[str], seconds: float, interval: float) -> Stats:
        """Each connection chains its own family for `seconds`; `tokens` is updated in place."""
        stats = Stats()
        conns = await open_all(self.host, self.port, len(tokens))
        decoder = msgspec.json.Decoder(TokenBody)
        deadline = time.perf_counter() + seconds

        async def worker(k: int, conn: Conn) -> None:
            token = tokens[k]
            fid = claims_of(token)["fid"]
            pacer = Pacer(interval)
            while time.perf_counter() < deadline:
                await pacer.wait()
                data = self.refresh_request(token)
                sent = time.perf_counter()
                resp = await conn.send(data)
                took = time.perf_counter() - sent
                if resp.status != 200:
                    stats.error(f"refresh {resp.status} {resp.body[:80]!r}")
                    return  # the chain is broken: this family is over
                try:
                    body = decoder.decode(resp.body)
                except msgspec.ValidationError:
                    stats.error("refresh body")
                    return
                if body.refresh_token == token or claims_of(body.refresh_token)["fid"] != fid:
                    stats.error("refresh token not rotated within its family")
                    return
                token = tokens[k] = body.refresh_token
                stats.latencies.append(took)
                if len(stats.latencies) % SAMPLE_EVERY == 1:
                    self.samples.append(body)

        stats.start()
        await asyncio.gather(*(worker(k, c) for k, c in enumerate(conns)))
        stats.stop()
        await close_all(conns)
        return stats

    async def refresh(self, families: dict[int, str]) -> dict[str, Any]:
        c = self.args.connections
        spare = [families[u] for u in sorted(families)]
        if len(spare) < c + 8:
            raise RuntimeError(f"{len(spare)} families for {c} connections and the checks")
        tokens, checks = spare[:c], spare[c : c + 8]
        settled = await self.settle()
        await self.refresh_run(tokens, 1.0, 0.0)  # warm-up
        db = await db_counters(self.server_cpu.dsn)
        before = self.server_cpu.sample()
        self.profile("refresh")
        top = await self.refresh_run(tokens, self.args.seconds, 0.0)
        self.profile(None)
        cpu = ServerCpu.delta(before, self.server_cpu.sample())
        db_after = await db_counters(self.server_cpu.dsn)
        result: dict[str, Any] = {"max": top.summary()}
        result["max"]["settled_before_s"] = settled
        result["max"]["database_per_request"] = db_per_request(db, db_after, top.summary()["ok"])
        result["max"]["server_cpu_s"] = cpu
        result["max"]["server_cpu_ms_per_request"] = per_request_ms(cpu, top.summary()["ok"])
        target = top.summary()["ok_per_s"] / 2
        if target > 0:
            before = self.server_cpu.sample()
            half = await self.refresh_run(tokens, self.args.seconds, c / target)
            cpu = ServerCpu.delta(before, self.server_cpu.sample())
            result["half"] = half.summary()
            result["half"]["target_per_s"] = round(target, 1)
            result["half"]["server_cpu_s"] = cpu
        result["families"] = c
        result["reuse_detection"] = await self.reuse_checks(checks)
        return result

    async def reuse_checks(self, tokens: list[str]) -> dict[str, Any]:
        """Replay: a rotated token is refused and ends its family (its current token too).
        Race: two concurrent refreshes of one token, exactly one 200."""
        conn, other = await open_all(self.host, self.port, 2)
        replay = {"families": 0, "replay_refused": 0, "family_ended": 0}
        for token in tokens[:4]:
            first = await conn.send(self.refresh_request(token))
            if first.status != 200:
                continue
            current = msgspec.json.decode(first.body, type=TokenBody).refresh_token
            replay["families"] += 1
            again = await conn.send(self.refresh_request(token))
            replay["replay_refused"] += again.status == 400 and b"invalid_grant" in again.body
            after = await conn.send(self.refresh_request(current))
            replay["family_ended"] += after.status == 400 and b"invalid_grant" in after.body
        race = {"families": 0, "exactly_one_won": 0}
        for token in tokens[4:]:
            a, b = await asyncio.gather(
                conn.send(self.refresh_request(token)), other.send(self.refresh_request(token))
            )
            race["families"] += 1
            race["exactly_one_won"] += [a.status, b.status].count(200) == 1
        await close_all([conn, other])
        return {"replay": replay, "concurrent_use": race}

    # --- password logins ------------------------------------------------------------------------

    async def prepare_flows(self, count: int) -> deque[tuple[int, str, str, str]]:
        """(user index, login path, CSRF cookie, CSRF field) of fresh authorization requests."""
        flows: deque[tuple[int, str, str, str]] = deque()
        todo = deque(range(count))
        conns = await open_all(self.host, self.port, 8)

        async def worker(conn: Conn) -> None:
            while todo:
                i = todo.popleft()
                resp = await conn.send(self.get(self.authorize_path(f"l{i}")))
                location = resp.header("location") or ""
                if resp.status != 302 or "/login?" not in location:
                    raise RuntimeError(f"authorize answered {resp.status} {location}")
                path = f"{self.base}/login?{urlsplit(location).query}"
                page = await conn.send(self.get(path))
                cookie = page.cookies().get("authpi_csrf")
                if page.status != 200 or not cookie:
                    raise RuntimeError(f"the login page answered {page.status}")
                flows.append((i % len(self.users), path, cookie, self.csrf_of(page)))

        await asyncio.gather(*(worker(c) for c in conns))
        await close_all(conns)
        return flows

    async def logins(self) -> dict[str, Any]:
        seconds = self.args.login_seconds
        flows = await self.prepare_flows(int(seconds * self.args.login_stock_per_s))
        stats = Stats()
        conns = await open_all(self.host, self.port, self.args.login_connections)
        deadline = time.perf_counter() + seconds
        exhausted = False

        async def worker(conn: Conn) -> None:
            nonlocal exhausted
            while time.perf_counter() < deadline:
                if not flows:
                    exhausted = True
                    return
                u, path, cookie, csrf = flows.popleft()
                user = self.users[u]
                data = self.post(
                    path, {"email": user.email, "password": user.password, "csrf": csrf},
                    {"authpi_csrf": cookie},
                )  # fmt: skip
                sent = time.perf_counter()
                resp = await conn.send(data)
                took = time.perf_counter() - sent
                if resp.status != 303 or self.code_of(resp) is None:
                    stats.error(f"login {resp.status} {resp.header('location')}")
                    continue
                if not resp.cookies().get("authpi_session"):
                    stats.error("login without a session cookie")
                    continue
                stats.latencies.append(took)

        db = await db_counters(self.server_cpu.dsn)
        before = self.server_cpu.sample()
        deadline = time.perf_counter() + seconds
        self.profile("login")
        stats.start()
        await asyncio.gather(*(worker(c) for c in conns))
        stats.stop()
        self.profile(None)
        cpu = ServerCpu.delta(before, self.server_cpu.sample())
        db_after = await db_counters(self.server_cpu.dsn)
        await close_all(conns)
        result = stats.summary()
        result["connections"] = self.args.login_connections
        result["stock_exhausted"] = exhausted
        result["server_cpu_s"] = cpu
        result["server_cpu_ms_per_request"] = per_request_ms(cpu, stats.summary()["ok"])
        result["database_per_request"] = db_per_request(db, db_after, stats.summary()["ok"])
        return result

    # --- token verification (off the hot path) --------------------------------------------------

    async def verify_samples(self) -> dict[str, int]:
        async with httpx.AsyncClient(timeout=10) as http:
            jwks = (await http.get(f"{self.t.issuer_url}/jwks.json")).json()
        keys = jwt.PyJWKSet.from_dict(jwks)
        by_kid = {k.key_id: k for k in keys.keys}
        checked = bad = 0
        for body in self.samples:
            for token, aud in ((body.id_token, self.t.public_client_id), (body.access_token, None)):
                header = jwt.get_unverified_header(token)
                key = by_kid.get(header.get("kid"))
                try:
                    if key is None:
                        raise jwt.InvalidTokenError("unknown kid")
                    decoded = jwt.decode(
                        token, key.key, algorithms=[header["alg"]], issuer=self.t.issuer_url,
                        audience=aud, options={"verify_aud": aud is not None},
                    )  # fmt: skip
                    if not decoded.get("sid") or not decoded.get("sub"):
                        raise jwt.InvalidTokenError("no sid or sub")
                    checked += 1
                except jwt.InvalidTokenError:
                    bad += 1
        return {"tokens_verified": checked, "tokens_bad": bad}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if args.profile:
        hook = Path(args.profile).resolve()
        hook.mkdir(parents=True, exist_ok=True)
        (hook / "sitecustomize.py").write_text(PROFILE_HOOK)
        os.environ["BENCH_PROFILE_DIR"] = str(hook)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(hook), os.environ.get("PYTHONPATH")) if p
        )
    async with human_login_platform(workers=args.workers, users=0) as (running, tenant):
        bench = Bench(tenant, args)
        bench.cpu = ServerCpu(running.proc.pid)
        results["set_up"] = await bench.set_up_users()
        results["server_pids"] = _pids(running)
        bench.profiled = [p for p in results["server_pids"] if _is_python(p)]
        families: dict[int, str] = {}
        if "codes" in args.only or "refresh" in args.only:
            results["codes"] = await bench.codes(families)
        if "refresh" in args.only:
            results["refresh"] = await bench.refresh(families)
        if "login" in args.only:
            results["login"] = await bench.logins()
        results["sampled_tokens"] = await bench.verify_samples()
    if args.perf:
        results["perf"] = {
            tag: perf_summary(os.path.join(args.perf, f"{tag}.data"))
            for tag in ("exchange", "refresh", "login")
            if os.path.exists(os.path.join(args.perf, f"{tag}.data"))
        }
    if args.profile:
        requests = {
            "exchange": results.get("codes", {}).get("exchange", {}).get("ok", 0),
            "refresh": results.get("refresh", {}).get("max", {}).get("ok", 0),
            "login": results.get("login", {}).get("ok", 0),
        }
        results["profile"] = {
            tag: profile_summary(args.profile, tag, n) for tag, n in requests.items() if n
        }
    return results


def _pids(running: Running) -> list[int]:
    import psutil

    return [running.proc.pid, *(p.pid for p in psutil.Process(running.proc.pid).children(True))]


def perf_summary(data: str, top: int = 20) -> dict[str, Any]:
    """Samples of a `perf record` by shared object, and the hottest symbols."""
    import subprocess

    def report(sort: str) -> list[str]:
        out = subprocess.run(
            ["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", sort,
             "--percent-limit", "0.5", "-q"],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        return [" ".join(line.split()) for line in out.splitlines() if line.strip()][:top]

    return {"by_process_and_object": report("comm,dso"), "by_symbol": report("dso,sym")}


def profile_summary(directory: str, tag: str, requests: int, top: int = 25) -> dict[str, Any]:
    """The merged cProfile of the server's processes for one scenario: the functions of the
    project and of its libraries by own time and by cumulative time (coroutine time counts only
    while it runs, not while it awaits), and the SQL statements and commands per request."""
    import glob
    import io
    import pstats

    files = sorted(glob.glob(os.path.join(directory, f"{tag}-*.prof")))
    if not files or not requests:
        return {}
    stats = pstats.Stats(*files, stream=io.StringIO())
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows: list[tuple[str, int, float, float]] = []
    statements = commands = 0
    for (filename, line, func), (primitive, _n, tottime, cumtime, _callers) in raw.items():
        if filename.endswith("psycopg/_cursor_base.py") and func == "_start_query":
            statements += primitive
        if filename.endswith("psycopg/_connection_base.py") and func == "_exec_command":
            commands += primitive
        short = re.sub(r".*/(site-packages|src|lib/python3\.\d+)/", "", filename)
        rows.append((f"{short}:{line}({func})", primitive, tottime, cumtime))
    total = sum(r[2] for r in rows) or 1.0

    def table(key: int) -> list[str]:
        ordered = sorted(rows, key=lambda r: r[key], reverse=True)[:top]
        return [
            f"{r[key] / total:6.1%} {r[key] * 1000 / requests:7.3f} ms/req  {r[0]}" for r in ordered
        ]

    packages: dict[str, float] = {}
    for where, _n, tottime, _c in rows:
        head = where.split("/", 1)[0] if "/" in where else where.split(":", 1)[0]
        if head == "authpi":
            head = "/".join(where.split("/")[:2])  # authpi/token, authpi/eventstore, ...
        packages[head] = packages.get(head, 0.0) + tottime
    by_package = sorted(packages.items(), key=lambda kv: kv[1], reverse=True)[:15]
    counted: dict[str, int] = {}
    for path in glob.glob(os.path.join(directory, f"{tag}-*.sql.json")):
        for text, n in json.loads(Path(path).read_text()).items():
            counted[text] = counted.get(text, 0) + n
    sql = [
        f"{n / requests:6.2f}/req  {text}"
        for text, n in sorted(counted.items(), key=lambda kv: kv[1], reverse=True)
        if n / requests >= 0.05
    ]
    return {
        "requests": requests,
        "profiled_seconds_in_python": round(total, 2),
        "sql_per_request": sql,
        "own_time_by_package": {k: f"{v / total:.1%}" for k, v in by_package},
        "sql_statements_per_request": round(statements / requests, 1),
        "sql_commands_per_request (BEGIN/COMMIT/SAVEPOINT...)": round(commands / requests, 1),
        "by_own_time": table(2),
        "by_cumulative_time": table(3),
    }


def _is_python(pid: int) -> bool:
    import psutil

    try:
        return "python" in psutil.Process(pid).name()
    except psutil.Error:
        return False


def _line(name: str, r: dict[str, Any]) -> str:
    cpu = r.get("server_cpu_ms_per_request", {}).get("server_total")
    spent = r.get("server_cpu_s", {})
    secs = r["seconds"] or 1.0
    server = sum(v for k, v in spent.items() if k in ("authpi", "postgres", "nats")) / secs
    db = r.get("database_per_request") or {}
    return (
        f"{name:20} {r['ok_per_s']:>8.1f}/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
        f"  errors {r['errors']}"
        + (f"  server CPU {cpu:.2f} ms/req ({server:.2f} cores;"
           f" others {spent.get('others', 0.0) / secs:.2f})" if cpu is not None else "")
        + f"  generator {r['generator_cpu_share_of_one_core']:.0%} of a core"
        + (f"  DB per request: {db['commits']} commits, {db['returned'] + db['fetched']:.0f}"
           f" rows read, {db['inserted'] + db['updated'] + db['deleted']:.1f} rows written"
           if db else "")
    )  # fmt: skip


def _print(results: dict[str, Any]) -> None:
    print(json.dumps(results, indent=2))
    print(f"\nIdP processes: {results['idp_workers']}   cores: {results['cpus']}")
    http = results["http"]
    if "codes" in http:
        for run in [http["codes"]["exchange"], *http["codes"]["exchange_more_connections"]]:
            print(_line(f"code exchange ({run['connections']})", run))
        print(_line("authorize (session)", http["codes"]["mint_with_session"]))
    if "refresh" in http:
        print(_line("refresh max", http["refresh"]["max"]))
        if "half" in http["refresh"]:
            print(_line("refresh half", http["refresh"]["half"]))
        print(f"reuse detection: {json.dumps(http['refresh']['reuse_detection'])}")
    if "login" in http:
        print(_line("password login", http["login"]))
    print(f"sampled tokens: {http['sampled_tokens']}")
    for tag, perf in http.get("perf", {}).items():
        print(f"\nperf {tag}, by process and object:")
        for row in perf["by_process_and_object"]:
            print(f"    {row}")
        print("  by symbol:")
        for row in perf["by_symbol"]:
            print(f"    {row}")
    for tag, prof in http.get("profile", {}).items():
        if not prof:
            continue
        print(f"\nprofile {tag}: {prof['requests']} requests, SQL statements/request"
              f" {prof['sql_statements_per_request']}, commands/request"
              f" {prof['sql_commands_per_request (BEGIN/COMMIT/SAVEPOINT...)']}")  # fmt: skip
        print(f"  own time by package: {prof['own_time_by_package']}")
        print("  SQL statements (SQL) and transaction commands (CMD) per request:")
        for row in prof.get("sql_per_request", []):
            print(f"    {row}")
        print("  by cumulative time:")
        for row in prof["by_cumulative_time"]:
            print(f"    {row}")
        print("  by own time:")
        for row in prof["by_own_time"][:12]:
            print(f"    {row}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench_login")
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("AUTHPI_IDP_WORKERS") or 2),
        help="processes serving the IdP port (AUTHPI_IDP_WORKERS)",
    )  # fmt: skip
    parser.add_argument("--users", type=int, default=500, help="portal users (signup + consent)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--more-exchange-connections", default="128",
        help="comma-separated: the exchanges again at each of these numbers of connections",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="per refresh run and codes")
    parser.add_argument("--login-seconds", type=float, default=10.0)
    parser.add_argument("--login-connections", type=int, default=8)
    parser.add_argument("--login-stock-per-s", type=float, default=60.0)
    parser.add_argument(
        "--only", default="codes,refresh,login", help="comma-separated: codes, refresh, login"
    )
    parser.add_argument("--out", default="bench-results/login.json")
    parser.add_argument(
        "--perf", metavar="DIR", help="perf record the server's processes per scenario into DIR"
    )
    parser.add_argument(
        "--py-spy", metavar="DIR", help="py-spy record the server's Python processes per scenario"
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="cProfile the server's processes per scenario into DIR"
    )
    args = parser.parse_args(argv)
    args.only = set(args.only.split(","))
    more = args.more_exchange_connections
    args.more_exchange_connections = [int(n) for n in more.split(",") if n]
    from authpi.config import from_env

    # The server's parameters: the platform is started without this shell's AUTHPI_* variables
    # (authpi.platform.testing.process), so it runs the defaults.
    s = from_env({k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")})
    results: dict[str, Any] = {
        "idp_workers": args.workers, "cpus": os.cpu_count(),
        "argon2": {"memory_kib": s.argon2_memory_kib, "time_cost": s.argon2_time_cost,
                   "parallelism": s.argon2_parallelism},
        "load_average_before": os.getloadavg(),
    }  # fmt: skip
    results["http"] = uvloop.run(measure(args))
    _print(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
