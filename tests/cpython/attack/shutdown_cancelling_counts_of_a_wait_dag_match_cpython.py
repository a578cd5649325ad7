# Every task is left pending when main returns; asyncio.run's shutdown
# cancels them all. Prints each task's cancelling() and cancelled() after.
import asyncio

T = {}

async def sleeper():
    await asyncio.sleep(1000)

async def joiner(t):
    await t

async def gatherer(*ts):
    await asyncio.gather(*ts)

async def shielder(t):
    await asyncio.shield(t)

async def waitfor(t):
    await asyncio.wait_for(t, 1000)

async def main():
    T['x'] = x = asyncio.create_task(sleeper())
    T['y'] = y = asyncio.create_task(sleeper())
    T['j1'] = j1 = asyncio.create_task(joiner(x))
    T['j2'] = j2 = asyncio.create_task(joiner(x))
    T['g'] = asyncio.create_task(gatherer(j1, j2, y))
    T['s'] = asyncio.create_task(shielder(y))
    T['w'] = asyncio.create_task(waitfor(x))
    T['jj'] = asyncio.create_task(joiner(j1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)

asyncio.run(main())
for name, t in T.items():
    print(name, t.cancelling(), t.cancelled())
