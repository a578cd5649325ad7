# The Python twin of `wait_all_completed_and_timeout` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")
    return name

def names(s):
    return sorted(t.get_name() for t in s)

async def main():
    tasks = [asyncio.create_task(job(n, d), name=n) for n, d in [("a", 3), ("b", 1), ("c", 2)]]
    done, pending = await asyncio.wait(tasks, timeout=1.5)
    log(f"timeout: done={names(done)} pending={names(pending)}")
    log(f"nothing cancelled: {[t.cancelled() for t in tasks]}")
    done, pending = await asyncio.wait(tasks)
    log(f"all: done={names(done)} pending={names(pending)}")
    done, pending = await asyncio.wait(tasks, timeout=10)
    log(f"again: done={names(done)} pending={names(pending)}")
    return len(done)

go(main)
