# The Python twin of `gather_child_cancelled_from_outside` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d):
    try:
        await asyncio.sleep(d)
    except asyncio.CancelledError:
        log(f"{name} cancelled")
        raise
    log(f"{name} done")
    return name

async def main():
    a = asyncio.create_task(job("a", 5))
    b = asyncio.create_task(job("b", 2))
    asyncio.get_running_loop().call_later(1, lambda: a.cancel("outside"))
    try:
        await asyncio.gather(a, b)
    except asyncio.CancelledError as e:
        log(f"gather raised {ex(e)}")
    me = asyncio.current_task()
    log(f"main cancelling={me.cancelling()}, b done={b.done()}")
    log(f"b -> {await b}")
    return me.cancelling()

go(main)
