# The Python twin of `gather_as_an_object_answers_as_cpython` in
# tests/runtime_combinators.rs.

from prelude import *

async def main():
    async def s():
        await asyncio.sleep(10)
    a = asyncio.create_task(s())
    b = asyncio.create_task(s())
    g = asyncio.gather(a, b)
    await asyncio.sleep(0)
    log(f"cancel: {g.cancel('bye')}")
    try:
        await g
    except asyncio.CancelledError as e:
        log(f"gather raised {ex(e)}")
    log(f"done={g.done()} cancelled={g.cancelled()} child cancelled={a.cancelled()}")
    c = asyncio.create_task(s())
    d = asyncio.create_task(s())
    g2 = asyncio.gather(c, d)
    await asyncio.sleep(0)
    c.cancel()
    try:
        await g2
    except asyncio.CancelledError as e:
        log(f"child cancelled from outside: gather raised {ex(e)}")
    log(f"done={g2.done()} cancelled={g2.cancelled()} other child done={d.done()}")
    d.cancel()
    return 0

go(main)
