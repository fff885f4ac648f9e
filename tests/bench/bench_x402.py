"""x402 figures: verify/s (platform.md 5.8 steps 1-6, local signature work with eth-account)
and top-ups/s end to end on a local Anvil (verify, balance, nonce state, simulation, settlement
with receipt, the replay store and an idempotent top-up), with N concurrent payers.
Usage: python -m tests.bench.bench_x402 [--seconds 3] [--topups 60] [--concurrency 4]"""

from __future__ import annotations

import argparse
import asyncio
import time

from eth_account import Account
from psycopg_pool import AsyncConnectionPool

from authpi.billing.service import MIGRATIONS
from authpi.billing.x402.chain import Chain, Settler
from authpi.billing.x402.verify import verify
from authpi.billing.x402.wire import read_payment
from authpi.embedded.anvil import DEV_KEYS, EmbeddedAnvil
from authpi.eventstore.migrations import migrate
from authpi.testing.infra import new_namespace, start_infra
from services.billing.tests.x402kit import ChainKit, header, make_payments, sign

URL = "http://127.0.0.1/v1/accounts/acc_bench/issuers"


async def main(seconds: float, topups: int, concurrency: int) -> None:
    infra = start_infra()
    anvil = EmbeddedAnvil()
    url = await asyncio.to_thread(anvil.start)
    pool = AsyncConnectionPool(infra.dsn, min_size=2, max_size=16, open=False)
    await pool.open(wait=True)
    chain = Chain(url)
    try:
        deployer = Settler.from_key(chain, DEV_KEYS[0])
        kit = ChainKit(url=url, token=await deployer.deploy_token(), deployer=deployer)
        schema = f"{new_namespace()}_billing"
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            await migrate(conn, schema, MIGRATIONS)
        payments, ledger = make_payments(pool, schema, kit)
        req, _ = await payments.requirement("acc_bench", URL)

        wallet = Account.create()
        document = read_payment(sign(wallet, req))
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            verify(document, [req], int(time.time()))
            count += 1
        print(f"x402 verify/s (local, one core): {count / (time.perf_counter() - start):,.0f}")

        wallets = [await kit.funded_wallet(10**12) for _ in range(concurrency)]
        per = max(1, topups // concurrency)
        signed = [[sign(w, req) for _ in range(per)] for w in wallets]

        async def payer(documents: list[dict[str, object]]) -> None:
            for d in documents:
                outcome = await payments.pay("acc_bench", header(d), URL)
                assert outcome.ok, outcome.error

        start = time.perf_counter()
        await asyncio.gather(*(payer(d) for d in signed))
        elapsed = time.perf_counter() - start
        total = per * concurrency
        assert ledger.balances["acc_bench"] == total * req.amount
        print(f"x402 top-ups/s end to end on Anvil ({concurrency} payers): {total / elapsed:,.1f}")
    finally:
        await chain.aclose()
        await pool.close()
        anvil.stop()
        infra.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--topups", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.topups, args.concurrency))
