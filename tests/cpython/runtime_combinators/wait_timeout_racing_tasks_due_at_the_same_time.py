# The Python twin of `wait_timeout_racing_tasks_due_at_the_same_time` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")

def names(s):
    return sorted(t.get_name() for t in s)

async def main():
    # the tasks start (and arm their timers) after wait armed its timeout
    a = asyncio.create_task(job("a", 1), name="a")
    done, pending = await asyncio.wait([a], timeout=1)
    log(f"late tasks: done={names(done)} pending={names(pending)}")
    # the task armed its timer first
    b = asyncio.create_task(job("b", 1), name="b")
    await asyncio.sleep(0)
    done, pending = await asyncio.wait([b], timeout=1)
    log(f"early task: done={names(done)} pending={names(pending)}")
    return 0

go(main)
