# The Python twin of `shutdown_wakes_waiting_getters_with_queue_shut_down` in tests/sync_queue.rs (B10.4).
#
# PYTHON 3.13: `Queue.shutdown` and `QueueShutDown` are new in 3.13, and the
# checks run CPython 3.11. On 3.11, `Queue` below is 3.11's asyncio.Queue
# with the shutdown rules of 3.13 added, as the 3.13 documentation and
# docs/semantics.md B10.4 state them. That is an inference: 3.13 itself has not
# run these programs. On 3.13 the real asyncio.Queue is used. The other
# shutdown programs import `Queue` and `QueueShutDown` from here.
#
# The rules added: after shutdown, put and put_nowait raise QueueShutDown;
# get and get_nowait raise it once the queue is empty; shutdown(immediate=True)
# first drops the items, counting each as done (which may release join()); then
# every waiting getter, and after them every waiting putter, is woken to check
# again.

import sys
from prelude import *

if sys.version_info >= (3, 13):
    Queue, QueueShutDown = asyncio.Queue, asyncio.QueueShutDown
else:
    class QueueShutDown(Exception):
        pass

    class Queue(asyncio.Queue):
        _is_shutdown = False

        async def _wait_in(self, line, can_go_on):
            # 3.11's wait in put() and get(), with its cleanup on failure.
            waiter = self._get_loop().create_future()
            line.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                if waiter in line:
                    line.remove(waiter)
                if can_go_on() and not waiter.cancelled():
                    self._wakeup_next(line)
                raise

        async def put(self, item):
            while not self._is_shutdown and self.full():
                await self._wait_in(self._putters, lambda: not self.full())
            return self.put_nowait(item)

        def put_nowait(self, item):
            if self._is_shutdown:
                raise QueueShutDown
            return super().put_nowait(item)

        async def get(self):
            while not self._is_shutdown and self.empty():
                await self._wait_in(self._getters, lambda: not self.empty())
            return self.get_nowait()

        def get_nowait(self):
            if self._is_shutdown and self.empty():
                raise QueueShutDown
            return super().get_nowait()

        def shutdown(self, immediate=False):
            self._is_shutdown = True
            if immediate:
                while not self.empty():
                    self._get()
                    if self._unfinished_tasks > 0:
                        self._unfinished_tasks -= 1
                if self._unfinished_tasks == 0:
                    self._finished.set()
            for line in (self._getters, self._putters):
                while line:
                    waiter = line.popleft()
                    if not waiter.done():
                        waiter.set_result(None)

async def getter(q, name):
    log(f"{name} waits")
    try:
        await q.get()
    except QueueShutDown as e:
        log(f"{name}: {ex(e)}")

async def main():
    q = Queue()
    getters = [asyncio.create_task(getter(q, f"g{n}")) for n in (1, 2)]
    await asyncio.sleep(1)
    q.shutdown()
    log("shut down")
    await asyncio.gather(*getters)
    for what, call in [("put_nowait", lambda: q.put_nowait("x")), ("get_nowait", q.get_nowait)]:
        try:
            call()
        except QueueShutDown as e:
            log(f"{what}: {ex(e)}")
    try:
        await q.put("y")
    except QueueShutDown as e:
        log(f"put: {ex(e)}, qsize={q.qsize()}")
    try:
        await q.get()
    except QueueShutDown as e:
        log(f"get: {ex(e)}")

if __name__ == "__main__":
    go(main)
