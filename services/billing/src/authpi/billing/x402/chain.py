"""JSON-RPC client of an EVM node (httpx; eth-account signs): what x402 settlement needs of the
chain (platform.md 5.8 steps 7-10) and the token deployment of local chains.

- `balance_of`, `authorization_state`: the payer's funds and the EIP-3009 nonce state;
- `simulate_transfer`: an `eth_call` of `transferWithAuthorization` from the settlement account;
- `Settler.send_transfer` then `wait_receipt`: settlement, gas paid by the settlement key (from
  configuration, never from an event); the key's transaction nonces are handed out under a lock;
- `find_authorization_used`: the transaction that used an authorization nonce, from the token's
  `AuthorizationUsed(authorizer, nonce)` logs, to heal a crash between settlement and credit."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import httpx
from eth_abi.abi import decode, encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from authpi.billing.x402.verify import split_signature
from authpi.billing.x402.wire import Authorization

if TYPE_CHECKING:  # eth-account is imported on first use: most processes never settle
    from eth_account.signers.local import LocalAccount


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


BALANCE_OF = selector("balanceOf(address)")
AUTHORIZATION_STATE = selector("authorizationState(address,bytes32)")
TRANSFER_WITH_AUTHORIZATION = selector(
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)
MINT = selector("mint(address,uint256)")
AUTHORIZATION_USED_TOPIC = "0x" + keccak(text="AuthorizationUsed(address,bytes32)").hex()
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


class RpcError(Exception):
    """The node answered with an error (a revert in `eth_call` included)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class ChainUnavailable(Exception):
    """The node could not be reached or answered nonsense."""


def token_artifact() -> dict[str, Any]:
    """The EIP-3009 test token's ABI and creation bytecode (`make contracts`)."""
    text = (resources.files("authpi.billing.x402") / "AuthpiUsd.json").read_text()
    return json.loads(text)


def _topic_address(address: str) -> str:
    return "0x" + "0" * 24 + address.lower()[2:]


def transfer_calldata(auth: Authorization, signature: str) -> bytes:
    v, r, s = split_signature(signature)
    args = encode(
        ["address", "address", "uint256", "uint256", "uint256", "bytes32", "uint8", "bytes32",
         "bytes32"],
        [auth.from_, auth.to, auth.value, auth.valid_after, auth.valid_before,
         bytes.fromhex(auth.nonce[2:]), v, r.to_bytes(32, "big"), s.to_bytes(32, "big")],
    )  # fmt: skip
    return TRANSFER_WITH_AUTHORIZATION + args


@dataclass
class Chain:
    url: str
    timeout: float = 15.0
    _client: httpx.AsyncClient | None = field(default=None, repr=False)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _chain_id: int | None = field(default=None, repr=False)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            response = await self.client.post(self.url, json=body)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ChainUnavailable(f"{method}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict):
            raise ChainUnavailable(f"{method}: the node's answer is not an object")
        if "error" in answer:
            err: dict[str, Any] = answer["error"] or {}
            raise RpcError(int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
        return answer.get("result")

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self.call("eth_chainId", []), 16)
        return self._chain_id

    async def eth_call(self, to: str, data: bytes, sender: str | None = None) -> bytes:
        tx: dict[str, str] = {"to": to, "data": "0x" + data.hex()}
        if sender is not None:
            tx["from"] = sender
        result = await self.call("eth_call", [tx, "latest"])
        return bytes.fromhex(str(result)[2:])

    async def balance_of(self, token: str, owner: str) -> int:
        out = await self.eth_call(token, BALANCE_OF + encode(["address"], [owner]))
        return int(decode(["uint256"], out)[0])

    async def authorization_state(self, token: str, authorizer: str, nonce: str) -> bool:
        data = AUTHORIZATION_STATE + encode(
            ["address", "bytes32"], [authorizer, bytes.fromhex(nonce[2:])]
        )
        return bool(decode(["bool"], await self.eth_call(token, data))[0])

    async def simulate_transfer(
        self, token: str, sender: str, auth: Authorization, signature: str
    ) -> None:
        """Raises RpcError when `transferWithAuthorization` would revert."""
        await self.eth_call(token, transfer_calldata(auth, signature), sender)

    async def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        return await self.call("eth_getTransactionReceipt", [tx_hash])

    async def wait_receipt(self, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            found = await self.receipt(tx_hash)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise ChainUnavailable(f"no receipt for {tx_hash} within {timeout} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def find_authorization_used(
        self, token: str, authorizer: str, nonce: str, from_block: int = 0
    ) -> str | None:
        """The hash of the transaction that used `authorizer`'s `nonce` on `token`, if any."""
        logs = await self.call(
            "eth_getLogs",
            [{
                "address": token,
                "fromBlock": hex(from_block),
                "toBlock": "latest",
                "topics": [AUTHORIZATION_USED_TOPIC, _topic_address(authorizer), nonce.lower()],
            }],
        )  # fmt: skip
        for entry in logs or []:
            if not entry.get("removed"):
                return str(entry["transactionHash"])
        return None

    async def transferred(self, tx_hash: str, token: str, sender: str, to: str, value: int) -> bool:
        """Whether transaction `tx_hash` succeeded and moved `value` of `token` to `to`."""
        receipt = await self.receipt(tx_hash)
        if receipt is None or int(str(receipt.get("status", "0x0")), 16) != 1:
            return False
        for entry in receipt.get("logs") or []:
            topics = [str(t).lower() for t in entry.get("topics") or []]
            if (
                str(entry.get("address", "")).lower() == token.lower()
                and topics[:3] == [TRANSFER_TOPIC, _topic_address(sender), _topic_address(to)]
                and int(str(entry.get("data", "0x0")), 16) == value
            ):
                return True
        return False

    async def block_number(self) -> int:
        return int(await self.call("eth_blockNumber", []), 16)


@dataclass
class Settler:
    """Sends transactions signed with one key, handing out the key's nonces in order."""

    chain: Chain
    account: LocalAccount
    gas_margin: float = 1.25
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _next_nonce: int | None = field(default=None, repr=False)

    @classmethod
    def from_key(cls, chain: Chain, key: str) -> Settler:
        from eth_account import Account

        return cls(chain=chain, account=Account.from_key(key))

    @property
    def address(self) -> str:
        return str(self.account.address)

    async def send(self, to: str | None, data: bytes, gas: int | None = None) -> str:
        """Sign and send a transaction; its hash. Does not wait for inclusion."""
        chain = self.chain
        chain_id = await chain.chain_id()
        tx: dict[str, Any] = {"from": self.address, "data": "0x" + data.hex(), "value": "0x0"}
        if to is not None:
            tx["to"] = to
        if gas is None:
            gas = int(int(await chain.call("eth_estimateGas", [tx]), 16) * self.gas_margin)
        block = await chain.call("eth_getBlockByNumber", ["latest", False])
        base_fee = int(block.get("baseFeePerGas") or "0x0", 16)
        tip = int(await chain.call("eth_maxPriorityFeePerGas", []), 16)
        async with self._lock:
            if self._next_nonce is None:
                self._next_nonce = int(
                    await chain.call("eth_getTransactionCount", [self.address, "pending"]), 16
                )
            unsigned: dict[str, Any] = {
                "type": 2,
                "chainId": chain_id,
                "nonce": self._next_nonce,
                "gas": gas,
                "maxFeePerGas": base_fee * 2 + tip,
                "maxPriorityFeePerGas": tip,
                "value": 0,
                "data": data,
            }
            if to is not None:
                unsigned["to"] = to_checksum_address(to)
            raw = self.account.sign_transaction(unsigned).raw_transaction
            try:
                tx_hash = await chain.call("eth_sendRawTransaction", ["0x" + raw.hex()])
            except Exception:
                self._next_nonce = None  # re-read from the node next time
                raise
            self._next_nonce += 1
        return str(tx_hash)

    async def transact(self, to: str | None, data: bytes, timeout: float = 60.0) -> dict[str, Any]:
        receipt = await self.chain.wait_receipt(await self.send(to, data), timeout)
        if int(receipt.get("status", "0x0"), 16) != 1:
            raise RpcError(-1, f"transaction {receipt.get('transactionHash')} reverted")
        return receipt

    async def send_transfer(self, token: str, auth: Authorization, signature: str) -> str:
        return await self.send(token, transfer_calldata(auth, signature))

    async def deploy_token(self, name: str = "USD Coin", version: str = "2") -> str:
        """Deploy the EIP-3009 test token (its deployer may mint); its address."""
        bytecode = bytes.fromhex(token_artifact()["bytecode"][2:])
        receipt = await self.transact(
            None, bytecode + encode(["string", "string"], [name, version])
        )
        return to_checksum_address(str(receipt["contractAddress"]))

    async def mint(self, token: str, to: str, value: int) -> None:
        await self.transact(token, MINT + encode(["address", "uint256"], [to, value]))
