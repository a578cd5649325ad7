# The Python twin of `a5_4a_close_suspended_unwinds_and_runs_every_destructor_once` in tests/generator_semantics.rs.

import inspect
trace = []
def helper():
    try:
        yield 1
        trace.append('not reached')
    finally:
        trace.append('leave helper')
def g():
    try:
        trace.append('enter')
        yield from helper()
    finally:
        trace.append('finally')
gi = g()
next(gi)
trace.append(f'close returned {gi.close()}')
trace.append(inspect.getgeneratorstate(gi))
trace.append(f'close returned {gi.close()}')
print(trace)
