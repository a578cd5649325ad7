# The Python twin of `wait_first_completed` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")
    return name

def names(s):
    return sorted(t.get_name() for t in s)

async def main():
    tasks = [asyncio.create_task(job(n, d), name=n) for n, d in [("a", 3), ("b", 1), ("c", 2)]]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    log(f"done={names(done)} pending={names(pending)}")
    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    log(f"done={names(done)} pending={names(pending)}")
    # all done already: still waits for the callbacks, one iteration
    started = []
    async def mark():
        started.append(1)
    m = asyncio.create_task(mark())
    done, pending = await asyncio.wait(tasks[1:], return_when=asyncio.FIRST_COMPLETED)
    log(f"done={names(done)} pending={names(pending)} yielded={bool(started)}")
    return len(pending)

go(main)
