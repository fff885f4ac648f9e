"""A small asyncio load generator for the human-login benchmark: raw HTTP/1.1 keep-alive
connections, one request in flight per connection, so that a connection can carry state from one
response to its next request (a refresh token chain, a browser's cookies), which wrk's per-thread
Lua cannot do per connection.

It keeps its own work small (requests are pre-built bytes, responses are parsed only as far as
the status line, the headers and a Content-Length body) and reports its own CPU time beside the
figures, so that a reader can tell whether the generator or the server was the limit."""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import psutil


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower().encode())
        return value.decode("latin-1") if value is not None else None

    def cookies(self) -> dict[str, str]:
        """name -> value of the Set-Cookie headers (all of them)."""
        found: dict[str, str] = {}
        raw = self.headers.get(b"set-cookie")
        if raw is None:
            return found
        for line in raw.split(b"\n"):
            pair = line.split(b";", 1)[0].decode("latin-1")
            name, _, value = pair.partition("=")
            found[name.strip()] = value.strip()
        return found


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    async def send(self, data: bytes) -> Response:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0][9:12])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key in headers:  # Set-Cookie repeats
                headers[key] = headers[key] + b"\n" + value.strip()
            else:
                headers[key] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await self._chunked()
        else:
            body = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return Response(status, headers, body)

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


def request(
    method: str,
    host: str,
    path: str,
    *,
    form: bytes | None = None,
    cookies: dict[str, str] | None = None,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "User-Agent: authpi-bench"]
    if cookies:
        lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
    if form is not None:
        lines.append("Content-Type: application/x-www-form-urlencoded")
        lines.append(f"Content-Length: {len(form)}")
    elif method == "POST":
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (form or b"")


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Stats:
    """Latencies (s) of checked responses, and the errors by kind."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.started = 0.0
        self.ended = 0.0
        self.cpu_started = 0.0
        self.cpu_ended = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def start(self) -> None:
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()

    def stop(self) -> None:
        self.ended = time.perf_counter()
        self.cpu_ended = time.process_time()

    def summary(self) -> dict[str, Any]:
        elapsed = self.ended - self.started
        ok = len(self.latencies)
        errors = sum(self.errors.values())
        gen_cpu = self.cpu_ended - self.cpu_started
        return {
            "ok": ok,
            "errors": errors,
            "error_kinds": dict(self.errors),
            "seconds": round(elapsed, 2),
            "ok_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(pct(self.latencies, 0.50) * 1000, 2),
            "p90_ms": round(pct(self.latencies, 0.90) * 1000, 2),
            "p99_ms": round(pct(self.latencies, 0.99) * 1000, 2),
            "max_ms": round(max(self.latencies, default=0.0) * 1000, 2),
            "generator_cpu_s": round(gen_cpu, 2),
            "generator_cpu_share_of_one_core": round(gen_cpu / elapsed, 2) if elapsed else 0.0,
        }


class Pacer:
    """Holds one connection to `interval` seconds between request starts (0: closed loop). The
    first start is at a random offset within one interval, so that the connections do not
    arrive together in bursts."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next = time.perf_counter() + random.uniform(0.0, max(interval, 0.0))

    async def wait(self) -> None:
        if self.interval <= 0:
            return
        now = time.perf_counter()
        if self.next > now:
            await asyncio.sleep(self.next - now)
            self.next += self.interval
        else:
            self.next = now + self.interval


# --- server CPU --------------------------------------------------------------------------------


def _group(proc: psutil.Process) -> str:
    try:
        name = proc.name()
        if name.startswith("postgres"):
            return "postgres"
        if "nats" in name:
            return "nats"
        return "authpi"
    except psutil.Error:
        return "gone"


class ServerCpu:
    """utime+stime of the server's processes by group, read from /proc through psutil: the
    descendants of this process (authpi up and its IdP workers, NATS) and the PostgreSQL
    postmaster that serves `authpi up` (it detaches) with its backends, found by the socket
    directory in the platform's AUTHPI_DATABASE_URL. `machine` is every core's busy time, and
    `others` what neither the server nor this generator spent (other work on the machine)."""

    def __init__(self, platform_pid: int) -> None:
        self.me = psutil.Process(os.getpid())
        self.roots: list[psutil.Process] = []
        try:
            dsn = psutil.Process(platform_pid).environ().get("AUTHPI_DATABASE_URL", "")
        except psutil.Error:
            dsn = ""
        self.dsn = dsn
        found = re.search(r"(/tmp/authpi-t-[^/&?\s]+)", unquote(dsn))
        if found is not None:
            for proc in psutil.process_iter(["cmdline"]):
                cmd = proc.info.get("cmdline") or []
                if cmd and cmd[0].endswith("/postgres") and any(found.group(1) in a for a in cmd):
                    self.roots.append(proc)

    def server_pids(self) -> list[int]:
        """authpi (and its workers), NATS and PostgreSQL: not this process."""
        pids = [p.pid for p in self.me.children(recursive=True)]
        for root in self.roots:
            try:
                pids += [root.pid, *(c.pid for c in root.children(recursive=True))]
            except psutil.Error:
                continue
        return pids

    def sample(self) -> dict[int, tuple[str, float]]:
        seen: dict[int, tuple[str, float]] = {}
        procs: list[psutil.Process] = list(self.me.children(recursive=True))
        for root in self.roots:
            try:
                procs += [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
        for proc in procs:
            try:
                t = proc.cpu_times()
                seen[proc.pid] = (_group(proc), t.user + t.system)
            except psutil.Error:
                continue
        t = psutil.cpu_times()
        seen[-1] = ("machine", sum(t) - t.idle - getattr(t, "iowait", 0.0))
        m = self.me.cpu_times()
        seen[-2] = ("generator", m.user + m.system)
        return seen

    @staticmethod
    def delta(
        before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
    ) -> dict[str, float]:
        groups: dict[str, float] = {}
        for pid, (group, cpu) in after.items():
            spent = cpu - before.get(pid, (group, 0.0))[1]
            groups[group] = groups.get(group, 0.0) + spent
        server = sum(v for k, v in groups.items() if k in ("authpi", "postgres", "nats"))
        groups["others"] = groups.get("machine", 0.0) - server - groups.get("generator", 0.0)
        return {k: round(v, 2) for k, v in groups.items()}


def per_request_ms(cpu: dict[str, float], requests: int) -> dict[str, float]:
    if not requests:
        return {}
    server = {k: v for k, v in cpu.items() if k in ("authpi", "postgres", "nats")}
    out = {k: round(v / requests * 1000, 3) for k, v in server.items()}
    out["server_total"] = round(sum(server.values()) / requests * 1000, 3)
    return out


async def open_all(host: str, port: int, count: int) -> list[Conn]:
    return list(await asyncio.gather(*(Conn(host, port).open() for _ in range(count))))


async def close_all(conns: Iterable[Conn]) -> None:
    await asyncio.gather(*(c.close() for c in conns))


DB_COUNTERS = (
    "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated,"
    " tup_deleted FROM pg_stat_database WHERE datname = current_database()"
)
DB_FIELDS = ("commits", "rollbacks", "returned", "fetched", "inserted", "updated", "deleted")


TABLE_SCANS = (
    "SELECT schemaname || '.' || relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0),"
    " n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables"
)
_INDEXES = (
    "SELECT schemaname || '.' || relname, count(*) FROM pg_stat_user_indexes"
    " GROUP BY schemaname, relname"
)


async def db_counters(dsn: str) -> dict[str, Any]:
    """PostgreSQL's own counters of the platform's database (pg_stat_database: transactions and
    rows; pg_stat_user_tables: scans per table). An idle backend reports what it counted
    within 10 s (PostgreSQL's PGSTAT_IDLE_INTERVAL), hence the pause before reading."""
    import psycopg

    if not dsn:
        return {}
    await asyncio.sleep(11.0)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(DB_COUNTERS)
        row = await cur.fetchone()
        found: dict[str, Any] = dict(zip(DB_FIELDS, row or (), strict=False))
        cur = await conn.execute(TABLE_SCANS)
        found["tables"] = {r[0]: tuple(r[1:]) for r in await cur.fetchall()}
        cur = await conn.execute(_INDEXES)
        found["indexes"] = {r[0]: int(r[1]) for r in await cur.fetchall()}
    return found


def db_per_request(before: dict[str, Any], after: dict[str, Any], requests: int) -> dict[str, Any]:
    """Per request: commits and rows, the tables most read by sequential scans (with their
    index scans), which is where a missing index shows, and the tables written (rows inserted,
    updated (of them HOT, which touch no index), deleted, and the table's index count: what
    each written row costs PostgreSQL)."""
    if not requests or not before or not after:
        return {}
    out: dict[str, Any] = {
        k: round((after[k] - before[k] - (1 if k == "commits" else 0)) / requests, 2)
        for k in DB_FIELDS
    }
    scans: list[tuple[int, str, float, float]] = []
    written: list[tuple[float, str, dict[str, Any]]] = []
    for table, (seq, rows, idx, *writes) in after["tables"].items():
        b_seq, b_rows, b_idx, *b_writes = before["tables"].get(table, (0,) * 7)
        scans.append((rows - b_rows, table, (seq - b_seq) / requests, (idx - b_idx) / requests))
        ins, upd, hot, dele = (a - b for a, b in zip(writes, b_writes, strict=True))
        if ins + upd + dele:
            per = {"inserted": round(ins / requests, 2), "updated": round(upd / requests, 2),
                   "hot_updated": round(hot / requests, 2), "deleted": round(dele / requests, 2),
                   "indexes": after.get("indexes", {}).get(table, 0)}  # fmt: skip
            written.append(((ins + upd + dele) / requests, table, per))
    out["seq_scanned_tables"] = {
        t: {"seq_rows": round(r / requests, 1), "seq_scans": round(s, 2), "idx_scans": round(i, 2)}
        for r, t, s, i in sorted(scans, reverse=True)[:5]
        if r > 0
    }
    out["written_tables"] = {t: per for _, t, per in sorted(written, reverse=True)}
    return out
