# The Python twin of `a5_4b_destructor_yielding_during_close_is_ignored_exit_and_resume_finishes_the_unwind` in tests/generator_semantics.rs.

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
try:
    next(gi)
except GeneratorExit:
    trace.append('next raised GeneratorExit')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
