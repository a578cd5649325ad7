# The Python twin of `a5_4b_destructor_yielding_during_close_then_a_second_close_finishes` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    try:
        yield 1
    finally:
        trace.append('finally start')
        yield 2
        trace.append('finally end')
gi = g()
next(gi)
try:
    gi.close()
except RuntimeError as e:
    trace.append(f'RuntimeError: {e}')
trace.append(inspect.getgeneratorstate(gi))
trace.append(f'second close returned {gi.close()}')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
