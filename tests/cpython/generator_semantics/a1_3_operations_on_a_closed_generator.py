# The Python twin of `a1_3_operations_on_a_closed_generator` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    try:
        yield 1
    except ValueError:
        trace.append('body caught')
    return 5
gi = g()
next(gi)
try:
    next(gi)
except StopIteration as e:
    trace.append(f'returned {e.value}')
try:
    next(gi)
except StopIteration as e:
    trace.append(f'next: StopIteration {e.value}')
try:
    gi.send(7)
except StopIteration as e:
    trace.append(f'send: StopIteration {e.value}')
try:
    gi.throw(ValueError('x'))
except ValueError as e:
    trace.append(f'throw: re-raised {e}')
trace.append(f'close: {gi.close()}')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
