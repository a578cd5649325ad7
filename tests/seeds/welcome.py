import asyncio, sys, time

async def a():
    print("欢迎使用 a ！")
    await asyncio.sleep(1)
    print("欢迎回到 a ！")

async def b():
    print("欢迎来到 b ！")
    await asyncio.sleep(2)
    print("欢迎回到 b ！")

async def main_tasks():
    task1 = asyncio.create_task(a())
    task2 = asyncio.create_task(b())
    print("准备开始")
    await task1
    print("task1 结束")
    await task2
    print("task2 结束")

async def main_gather():
    await asyncio.gather(a(), b())

main = {'tasks': main_tasks, 'gather': main_gather}[sys.argv[1]]
start = time.perf_counter()
asyncio.run(main())
print('elapsed: {:.3f}s'.format(time.perf_counter() - start))
