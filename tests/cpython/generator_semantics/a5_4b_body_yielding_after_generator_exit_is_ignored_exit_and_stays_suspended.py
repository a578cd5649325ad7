# The Python twin of `a5_4b_body_yielding_after_generator_exit_is_ignored_exit_and_stays_suspended` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    try:
        try:
            yield 1
        except GeneratorExit:
            trace.append('caught')
        yield 2
        trace.append('not reached')
    finally:
        trace.append('finally')
gi = g()
next(gi)
try:
    gi.close()
except RuntimeError as e:
    trace.append(f'RuntimeError: {e}')
trace.append(inspect.getgeneratorstate(gi))
trace.append(f'close returned {gi.close()}')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
