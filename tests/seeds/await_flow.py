import asyncio, sys, time

async def work_1():
    print('work_1 start')
    await asyncio.sleep(1)
    print('work_1 end')

async def work_2():
    print('work_2 start')
    await asyncio.sleep(2)
    print('work_2 end')

async def main_sequential():
    print('before await')
    await work_1()
    print('awaited work_1')
    await work_2()
    print('awaited work_2')

async def main_tasks():
    task1 = asyncio.create_task(work_1())
    task2 = asyncio.create_task(work_2())
    print('before await')
    await task1
    print('awaited work_1')
    await task2
    print('awaited work_2')

main = {'sequential': main_sequential, 'tasks': main_tasks}[sys.argv[1]]
start = time.time()
asyncio.run(main())
print('elapsed: {:.3f}s'.format(time.time() - start))
