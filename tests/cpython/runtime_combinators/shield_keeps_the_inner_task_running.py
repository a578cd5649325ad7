# The Python twin of `shield_keeps_the_inner_task_running` in tests/runtime_combinators.rs.

from prelude import *

async def inner():
    await asyncio.sleep(2)
    log("inner finished")
    return "inner value"

async def outer(i):
    try:
        return await asyncio.shield(i)
    except asyncio.CancelledError as e:
        log(f"outer caught {ex(e)}")
        raise

async def main():
    i = asyncio.create_task(inner())
    o = asyncio.create_task(outer(i))
    await asyncio.sleep(1)
    o.cancel("stop")
    try:
        await o
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}, inner done={i.done()} cancelled={i.cancelled()}")
    log(f"inner -> {await i}")
    log(f"shield of a done task -> {await asyncio.shield(i)}")
    return o.cancelled()

go(main)
