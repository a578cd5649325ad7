# A task group pending at shutdown, and a task joining the group's owner.
import asyncio

T = {}

async def sl():
    await asyncio.sleep(1000)

async def grouper():
    async with asyncio.TaskGroup() as tg:
        T['a'] = tg.create_task(sl())
        T['b'] = tg.create_task(sl())

async def join(t):
    await t

async def main():
    T['g'] = asyncio.create_task(grouper())
    T['jg'] = asyncio.create_task(join(T['g']))
    await asyncio.sleep(0)
    await asyncio.sleep(0)

asyncio.run(main())
for name in sorted(T):
    print(name, T[name].cancelling(), T[name].cancelled())
