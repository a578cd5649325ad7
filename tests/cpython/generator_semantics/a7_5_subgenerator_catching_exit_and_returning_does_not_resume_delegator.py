# The Python twin of `a7_5_subgenerator_catching_exit_and_returning_does_not_resume_delegator` in tests/generator_semantics.rs.

import inspect
trace = []
def f():
    try:
        trace.append("Enter f")
        yield
        trace.append("Exit f")
    except GeneratorExit:
        trace.append('f caught GeneratorExit')
        return 'f value'
def g():
    try:
        trace.append("Enter g")
        v = yield from f()
        trace.append(f"Exit g {v}")
    finally:
        trace.append('g finally')
gi = g()
next(gi)
trace.append(f'close returned {gi.close()}')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
