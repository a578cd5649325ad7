# The Python twin of `a2_2_send_to_created_is_rejected_value_handed_back_still_startable` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    trace.append('start')
    x = yield 1
    trace.append(f'got {x}')
gi = g()
try:
    gi.send('v')
except TypeError as e:
    trace.append(type(e).__name__)
trace.append(inspect.getgeneratorstate(gi))
trace.append(f'yielded {next(gi)}')
try:
    gi.send('w')
except StopIteration:
    trace.append('stop')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
