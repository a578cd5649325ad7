# The Python twin of `a5_4c_other_panic_during_close_propagates_out_of_close_and_closes` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    try:
        yield 1
    except GeneratorExit:
        raise ValueError('boom')
    finally:
        trace.append('finally')
gi = g()
next(gi)
try:
    gi.close()
except ValueError as e:
    trace.append(f'close raised ValueError: {e}')
trace.append(inspect.getgeneratorstate(gi))
try:
    next(gi)
except StopIteration:
    trace.append('StopIteration')
print(trace)
