"""`make fuzz`: a bounded schemathesis run over both ports of an already running platform (`make
run`, default ports), from their own /openapi.json. Credentials come from the data folder's
bootstrap.json. Path parameters `account_id` and `issuer_id` are pinned to the bootstrap account
and an issuer named `fuzz` (created on first use), so the fuzzer reaches real resources; the
platform's own issuer is never offered to it. The run authenticates with an API key of its own,
revoked at the end, and leaves out the operations that block, revoke, rotate, change or delete
API keys, and the deletion of issuers: the fuzzer learns ids from responses and would otherwise
lock itself out or delete the issuer it works in.

Checks: no 5xx, documented status codes, content types and response bodies. schemathesis is not a
dependency of the product; `make fuzz` installs it from requirements-fuzz.txt."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from authpi.contracts.scopes import ALL_SCOPES
from authpi.testing.plugin import eventually

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
ISSUER_NAME = "fuzz"
# Operations that would cut the run off from its own credentials or its issuer.
SELF_DESTRUCTIVE = (
    "^((block|unblock|revoke|rotate|update|delete)(Organization)?ApiKey|deleteIssuer)$"
)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and the rest passed to schemathesis (e.g. `--include-method POST`)."""
    parser = argparse.ArgumentParser(prog="python -m authpi.testing.fuzz")
    data_dir = os.environ.get("AUTHPI_DATA_DIR", ".authpi")
    parser.add_argument("--bootstrap", type=Path, default=Path(data_dir) / "bootstrap.json")
    parser.add_argument("--max-examples", type=int, default=20, help="cases per operation")
    parser.add_argument("--max-time", type=int, default=300, help="seconds per API")
    parser.add_argument("--only", choices=["core", "idp"], help="fuzz one API only")
    return parser.parse_known_args(argv)


async def fuzz_issuer(creds: dict[str, Any]) -> str:
    """The id of the account's `fuzz` issuer, created if missing and waited for on the IdP."""
    auth = (creds["api_key_id"], creds["api_key_secret"])
    issuers = f"/v1/accounts/{creds['account_id']}/issuers"
    async with httpx.AsyncClient(base_url=creds["api_url"], auth=auth, timeout=30) as core:
        listed = (await core.get(issuers, params={"limit": 100})).raise_for_status().json()
        found = [i["id"] for i in listed["data"] if i.get("name") == ISSUER_NAME]
        if found:
            return found[0]
        created = (await core.post(issuers, json={"name": ISSUER_NAME})).raise_for_status()
        issuer_id: str = created.json()["data"]["id"]
    async with httpx.AsyncClient(base_url=creds["idp_url"], timeout=30) as idp:

        async def discoverable() -> bool:
            answer = await idp.get(f"/{issuer_id}/.well-known/openid-configuration")
            return answer.status_code == 200

        await eventually(discoverable)
    return issuer_id


async def fuzz_key(creds: dict[str, Any]) -> tuple[str, str]:
    """A fresh all-scope key for this run (bootstrap key ids stay out of the fuzzer's hands)."""
    auth = (creds["api_key_id"], creds["api_key_secret"])
    body = {"name": "fuzz", "restrictions": {"scopes": list(ALL_SCOPES)}}
    async with httpx.AsyncClient(base_url=creds["api_url"], auth=auth, timeout=30) as core:
        url = f"/v1/accounts/{creds['account_id']}/api-keys"
        key = (await core.post(url, json=body)).raise_for_status().json()["data"]
        key_id, secret = str(key["id"]), str(key["secret_plain"])

        async def accepted() -> bool:
            return (await core.get("/v1/me", auth=(key_id, secret))).status_code == 200

        await eventually(accepted)
    return key_id, secret


async def revoke_key(creds: dict[str, Any], key_id: str) -> None:
    auth = (creds["api_key_id"], creds["api_key_secret"])
    async with httpx.AsyncClient(base_url=creds["api_url"], auth=auth, timeout=30) as core:
        await core.post(f"/v1/accounts/{creds['account_id']}/api-keys/{key_id}/revoke")


def run_schemathesis(
    url: str,
    parameters: dict[str, str],
    args: argparse.Namespace,
    extra: list[str],
    auth: str | None,
) -> int:
    lines = ["[parameters]", *(f"{k} = {json.dumps(v)}" for k, v in parameters.items())]
    with tempfile.TemporaryDirectory(prefix="authpi-fuzz-") as tmp:
        config = Path(tmp) / "schemathesis.toml"
        config.write_text("\n".join(lines) + "\n")
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file", str(config),
            "run", f"{url}/openapi.json",
            "--checks", CHECKS,
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(args.max_examples),
            "--max-time", str(args.max_time),
            "--workers", "1",
            "--generation-database", "none",
            "--no-color",
        ]  # fmt: skip
        if auth is not None:
            command += ["--auth", auth, "--exclude-operation-id-regex", SELF_DESTRUCTIVE]
        command += extra
        print("fuzzing", url, flush=True)
        return subprocess.run(command, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    creds: dict[str, Any] = json.loads(args.bootstrap.read_text())
    issuer_id = asyncio.run(fuzz_issuer(creds))
    ids = {"account_id": creds["account_id"], "issuer_id": issuer_id}
    results: list[int] = []
    if args.only in (None, "core"):
        key_id, secret = asyncio.run(fuzz_key(creds))
        try:
            results.append(
                run_schemathesis(creds["api_url"], ids, args, extra, f"{key_id}:{secret}")
            )
        finally:
            asyncio.run(revoke_key(creds, key_id))
    if args.only in (None, "idp"):
        idp_ids = {"issuer_id": issuer_id}
        results.append(run_schemathesis(creds["idp_url"], idp_ids, args, extra, None))
    return max(results, default=0)


if __name__ == "__main__":
    raise SystemExit(main())
