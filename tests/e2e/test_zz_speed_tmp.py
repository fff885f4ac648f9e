import asyncio, time, secrets
from authpi.platform.testing.tenants import part, ADMIN
from authpi.platform.testing.webhooks import new_issuer
from authpi.directory.api.users import new_user, UserCreate

async def test_speed(admin, hooks_platform):
    issuer = await new_issuer(admin)
    users = part(hooks_platform, "users")
    acc = hooks_platform.account_id
    tag = secrets.token_hex(3)
    n = 1000
    it = iter(range(n))
    async def w():
        for i in it:
            await users.create(acc, issuer, new_user(UserCreate(username_type="email", username=f"x{tag}-{i}@example.test")), ADMIN)
    t = time.perf_counter()
    await asyncio.gather(*(w() for _ in range(32)))
    print("handler", n / (time.perf_counter() - t), "/s")
