# The producer/consumer program of seeds 000, 001 and 003, the Python twin
# of examples/producer_consumer.rs. The argument is the example's --mode:
# the variant (000, 001, 003), then optionally -seedN and -maxsizeN.
#
# The seeds draw the values with random.randint(1, 10); this program and the
# example draw them from the same 64-bit linear congruential generator, so
# both print the same values.
#
# Equal deadlines: every task sleeps 1 s in step with the others, so on a
# virtual clock their timers share deadlines exactly. CPython's timer heap
# compares deadlines only and fires such ties in heap order; a real clock
# never ties, and there the timers fire in the order they were armed, which
# is gencoro's rule (docs/semantics.md, deliberate difference 1). virtual_clock.py keeps CPython's
# heap, so this program orders equal deadlines by arming order itself; what
# it prints on the virtual clock is then what CPython prints on a real
# clock, the elapsed line aside.

import asyncio, heapq, itertools, sys, time
from asyncio import base_events, events

class _ArmedInOrder(events.TimerHandle):
    """A timer that fires after the timers armed before it with its deadline."""
    __slots__ = ('_seq',)
    _count = itertools.count()

    def __init__(self, when, callback, args, loop, context=None):
        super().__init__(when, callback, args, loop, context)
        self._seq = next(self._count)

    def __lt__(self, other):
        return (self._when, self._seq) < (other._when, other._seq)

def _call_at(self, when, callback, *args, context=None):
    self._check_closed()
    timer = _ArmedInOrder(when, callback, args, self, context)
    heapq.heappush(self._scheduled, timer)
    timer._scheduled = True
    return timer

base_events.BaseEventLoop.call_at = _call_at


class Values:
    """The values the producers put: as `Values` in examples/producer_consumer.rs."""
    def __init__(self, seed):
        self.state = seed

    def randint_1_10(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return 1 + (self.state >> 33) % 10

variant, *options = (sys.argv[1] if len(sys.argv) > 1 else '000').split('-')
seed = maxsize = 0
for option in options:
    if option.startswith('seed'):
        seed = int(option[len('seed'):])
    elif option.startswith('maxsize'):
        maxsize = int(option[len('maxsize'):])
    else:
        raise SystemExit(f'unknown option {option!r}')
values = Values(seed)

get_line, put_line, consumer_ids, producer_ids, run_for = {
    '000': ('{} get a val {}', '{} put a val: {}', ['con1', 'con2'], ['pro1', 'pro2'], 10),
    '001': ('consumer {} consume {}', 'producer {} produce {}', [1, 2], [1, 2], 15),
    '003': ('{} get a val : {}', '{} put a val: {}', ['consumer_1', 'consumer_2'],
            ['producer_1', 'producer_2'], 10),
}[variant]

async def consumer(queue, id):
    while True:
        val = await queue.get()
        print(get_line.format(id, val))
        await asyncio.sleep(1)

async def producer(queue, id):
    for i in range(5):
        val = values.randint_1_10()
        await queue.put(val)
        print(put_line.format(id, val))
        await asyncio.sleep(1)

async def main():
    queue = asyncio.Queue(maxsize)
    con1 = asyncio.create_task(consumer(queue, consumer_ids[0]))
    con2 = asyncio.create_task(consumer(queue, consumer_ids[1]))
    pro1 = asyncio.create_task(producer(queue, producer_ids[0]))
    pro2 = asyncio.create_task(producer(queue, producer_ids[1]))

    await asyncio.sleep(run_for)
    con1.cancel()
    con2.cancel()

    res = await asyncio.gather(con1, con2, pro1, pro2, return_exceptions=True)
    print(res)

start = time.perf_counter()
asyncio.run(main())
end = time.perf_counter()
print('elapsed: {:.3f}s'.format(end - start))
