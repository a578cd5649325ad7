import asyncio, time

start = time.time()

# "How to cancel": 100 tasks, interrupted after 2 s. The seed waits for a
# Ctrl-C (KeyboardInterrupt); here a timer stops the loop, so
# run_until_complete raises instead. Then every task is cancelled, the loop
# runs once more so they see it, and is closed.
async def test1():
    print('This is test1')
    await asyncio.sleep(10)
    print('test1 done')

loop = asyncio.new_event_loop()
tasks = [loop.create_task(test1()) for i in range(100)]
loop.call_later(2, loop.stop)
try:
    loop.run_until_complete(asyncio.wait(tasks))
except RuntimeError as e:
    print('interrupted: {}'.format(e))
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.stop()
    loop.run_forever()
finally:
    loop.close()
print('cancelled: {}'.format(sum(t.cancelled() for t in tasks)))
print('elapsed: {:.3f}s'.format(time.time() - start))
