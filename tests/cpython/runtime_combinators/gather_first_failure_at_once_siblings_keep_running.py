# The Python twin of `gather_first_failure_at_once_siblings_keep_running` in tests/runtime_combinators.rs.

from prelude import *

async def fail(d):
    await asyncio.sleep(d)
    log("failing")
    raise Boom("first")

async def fail_later(d):
    await asyncio.sleep(d)
    log("failing again")
    raise Boom("second")

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")
    return name

async def main():
    a = asyncio.create_task(job("a", 3))
    f = asyncio.create_task(fail(1))
    g = asyncio.create_task(fail_later(2))
    try:
        await asyncio.gather(a, f, g)
    except Boom as e:
        log(f"gather raised {ex(e)}")
    log(f"a cancelled={a.cancelled()} done={a.done()}")
    log(f"a -> {await a}")
    try:
        await g
    except Boom as e:
        log(f"g raised {ex(e)}")
    return a.cancelled()

go(main)
