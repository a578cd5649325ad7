# The Python twin of `a7_5_subgenerator_panicking_on_exit_propagates_through_delegator` in tests/generator_semantics.rs.

import inspect
trace = []
def f():
    try:
        trace.append("Enter f")
        yield
        trace.append("Exit f")
    except GeneratorExit:
        raise ValueError("Vorpal bunny encountered")
def g():
    try:
        trace.append("Enter g")
        yield from f()
        trace.append("Exit g")
    finally:
        trace.append('g finally')
gi = g()
next(gi)
try:
    gi.close()
except ValueError as e:
    trace.append(f'ValueError: {e}')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
