# The Python twin of `a3_3_panic_in_body_propagates_to_resumer_closes_and_runs_destructors` in tests/generator_semantics.rs.

import inspect
trace = []
def helper():
    try:
        raise ValueError('boom')
    finally:
        trace.append('inner finally')
def g():
    try:
        trace.append('enter')
        yield 1
        helper()
        yield 2
    finally:
        trace.append('finally')
gi = g()
next(gi)
try:
    next(gi)
except ValueError as e:
    trace.append(f'caught {e}')
trace.append(inspect.getgeneratorstate(gi))
try:
    next(gi)
except StopIteration:
    trace.append('StopIteration')
print(trace)
