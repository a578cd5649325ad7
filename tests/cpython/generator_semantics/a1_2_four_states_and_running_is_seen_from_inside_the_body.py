# The Python twin of `a1_2_four_states_and_running_is_seen_from_inside_the_body` in tests/generator_semantics.rs.

import inspect
trace = []
def report(where):
    trace.append(f'{where} {inspect.getgeneratorstate(me)} '
                 f'running={me.gi_running} suspended={me.gi_suspended}')
def g():
    report('inside')
    yield 1
    report('inside')
me = g()
report('outside')
next(me)
report('outside')
try:
    next(me)
except StopIteration:
    trace.append('stop')
report('outside')
print(trace)
