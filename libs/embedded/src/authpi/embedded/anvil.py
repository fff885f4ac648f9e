"""Start and stop a local EVM node: Anvil, from the npm package `@foundry-rs/anvil` that
`make venv` installs into the venv (`.venv/npm`; the package ships the binary). It listens on
127.0.0.1 at a free port and mines each transaction at once. Tests and `make run` (opted in
with AUTHPI_BILLING_LOCAL_CHAIN) settle x402 payments on it."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from authpi.embedded.servers import die_with_parent, free_port
from authpi.observability import get_logger

log = get_logger("authpi.embedded")

# Anvil's default development mnemonic derives these funded accounts (10,000 ETH each).
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)


def anvil_binary() -> Path:
    """AUTHPI_ANVIL_BIN, else the binary of the npm package in the venv, else `anvil` on PATH."""
    explicit = os.environ.get("AUTHPI_ANVIL_BIN")
    if explicit:
        return Path(explicit)
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = sys.platform if sys.platform != "win32" else "win32"
    package = f"anvil-{'linux' if system.startswith('linux') else system}-{arch}"
    roots = [Path(sys.prefix) / "npm", Path.cwd() / ".venv" / "npm"]
    for root in roots:
        candidate = root / "node_modules" / "@foundry-rs" / package / "bin" / "anvil"
        if candidate.exists():
            return candidate
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise RuntimeError(
        "anvil not found: `make chain-tools` installs the npm package @foundry-rs/anvil into "
        ".venv/npm (or set AUTHPI_ANVIL_BIN)"
    )


@dataclass
class EmbeddedAnvil:
    """`state_file`: where the chain is dumped on stop and loaded from on start (None: a fresh
    chain each time)."""

    chain_id: int = 31337
    port: int = 0
    state_file: Path | None = None
    log_file: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        binary = anvil_binary()
        self.port = self.port or free_port()
        args = [
            str(binary), "--host", "127.0.0.1", "--port", str(self.port),
            "--chain-id", str(self.chain_id), "--mnemonic", DEV_MNEMONIC, "--accounts", "4",
        ]  # fmt: skip
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--state", str(self.state_file)]
        out = subprocess.DEVNULL
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_file.open("ab")
        self._proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"anvil exited with {self._proc.returncode}")
            if self._answers():
                log.info("anvil.started", port=self.port, chain_id=self.chain_id)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("anvil did not start in time")

    def _answers(self) -> bool:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}
        )
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(request, timeout=0.5) as response:
                return "result" in json.loads(response.read())
        return False

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # anvil dumps --state on SIGTERM
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            log.info("anvil.stopped")
        self._proc = None
