# The Python twin of `a7_5_subgenerator_ignoring_exit_makes_delegator_close_report_ignored_exit` in tests/generator_semantics.rs.

import inspect
trace = []
def f():
    try:
        trace.append('Enter f')
        yield
        trace.append('Exit f')
    except GeneratorExit:
        trace.append('f caught GeneratorExit')
        yield
    finally:
        trace.append('f finally')
def g():
    try:
        trace.append('Enter g')
        yield from f()
        trace.append('Exit g')
    finally:
        trace.append('g finally')
gi = g()
next(gi)
try:
    gi.close()
except RuntimeError as e:
    trace.append(f'RuntimeError: {e}')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
