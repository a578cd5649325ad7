# A 3-link version of the Rust test's 200,000-link chain: cancelling the head
# counts one request on every link, and every link ends cancelled.
import asyncio

async def main():
    async def tail():
        await asyncio.sleep(3600)
    async def link(nxt):
        await nxt
    t2 = asyncio.create_task(tail())
    t1 = asyncio.create_task(link(t2))
    t0 = asyncio.create_task(link(t1))
    await asyncio.sleep(0)
    print(t0.cancel())
    print([t.cancelling() for t in (t0, t1, t2)])
    try:
        await t0
    except asyncio.CancelledError:
        print("head cancelled")
    print([(t.cancelled(), t.cancelling()) for t in (t0, t1, t2)])

asyncio.run(main())
