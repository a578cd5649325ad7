# The Python twin of `wait_reports_everything_done_by_the_time_it_wakes` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")

def names(s):
    return sorted(t.get_name() for t in s)

async def main():
    a = asyncio.create_task(job("a", 1), name="a")
    b = asyncio.create_task(job("b", 1), name="b")
    c = asyncio.create_task(job("c", 2), name="c")
    done, pending = await asyncio.wait([a, b, c], return_when=asyncio.FIRST_COMPLETED)
    log(f"done={names(done)} pending={names(pending)}")
    await c

go(main)
