# The Python twin of `task_cannot_join_itself` in tests/runtime_scheduling.rs.
# CPython's message goes on with the task's repr, so the log keeps what comes
# before the colon.

from prelude import *

async def main():
    cell = {}
    async def selfish():
        await asyncio.sleep(0)
        try:
            await cell["me"]
        except RuntimeError as e:
            log(f"RuntimeError: {str(e).split(':')[0]}")
        return "went on"
    cell["me"] = asyncio.create_task(selfish())
    return await cell["me"]

go(main)
