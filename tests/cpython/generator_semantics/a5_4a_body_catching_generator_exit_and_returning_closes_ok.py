# The Python twin of `a5_4a_body_catching_generator_exit_and_returning_closes_ok` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    try:
        yield 1
    except GeneratorExit:
        trace.append('caught GeneratorExit')
        return 'ignored value'
    finally:
        trace.append('finally')
gi = g()
next(gi)
trace.append(f'close returned {gi.close()}')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
