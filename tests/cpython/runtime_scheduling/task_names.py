# The Python twin of `task_names` in tests/runtime_scheduling.rs.

from prelude import *
import re

async def main():
    t = asyncio.create_task(asyncio.sleep(0))
    log(f"default name is Task-N: {re.fullmatch(r'Task-[0-9]+', t.get_name()) is not None}")
    t.set_name("renamed")
    log(t.get_name())
    u = asyncio.create_task(asyncio.sleep(0), name="given")
    log(u.get_name())
    await t
    await u
    return 0

go(main)
