# The Python twin of `exception_tells_pending_from_succeeded` in
# tests/runtime_scheduling.rs.

from prelude import *

async def main():
    async def ok():
        return 1
    async def fails():
        raise Boom("b")
    async def sleeper():
        await asyncio.sleep(10)
    t_ok = asyncio.create_task(ok())
    t_fail = asyncio.create_task(fails())
    t_cancel = asyncio.create_task(sleeper())
    try:
        t_ok.exception()
    except asyncio.InvalidStateError as e:
        log(f"pending: InvalidStateError({e})")
    await asyncio.sleep(0)
    t_cancel.cancel()
    await asyncio.sleep(0)
    log(f"succeeded: {t_ok.exception()}")
    log(f"failed: {ex(t_fail.exception())}")
    try:
        t_cancel.exception()
    except asyncio.CancelledError as e:
        log(f"cancelled: raised {ex(e)}")
    return 0

go(main)
