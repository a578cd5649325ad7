# The Python twin of `wait_first_exception` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d, fail=False):
    await asyncio.sleep(d)
    if fail:
        log(f"{name} fails")
        raise Boom(name)
    log(f"{name} done")
    return name

def names(s):
    return sorted(t.get_name() for t in s)

async def main():
    loop = asyncio.get_running_loop()
    x = asyncio.create_task(job("x", 5), name="x")
    a = asyncio.create_task(job("a", 1), name="a")
    b = asyncio.create_task(job("b", 2, fail=True), name="b")
    c = asyncio.create_task(job("c", 3), name="c")
    loop.call_later(0.5, x.cancel)  # a cancellation is not an exception
    done, pending = await asyncio.wait([x, a, b, c], return_when=asyncio.FIRST_EXCEPTION)
    log(f"done={names(done)} pending={names(pending)}")
    # without a failure it is ALL_COMPLETED
    done, pending = await asyncio.wait([a, c], return_when=asyncio.FIRST_EXCEPTION)
    log(f"done={names(done)} pending={names(pending)}")
    return len(done)

go(main)
