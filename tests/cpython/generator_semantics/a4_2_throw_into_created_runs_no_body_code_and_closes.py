# The Python twin of `a4_2_throw_into_created_runs_no_body_code_and_closes` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    try:
        trace.append('body')
        yield 1
    except ValueError:
        trace.append('caught in body')
    finally:
        trace.append('finally')
gi = g()
try:
    gi.throw(ValueError('early'))
except ValueError as e:
    trace.append(f'raised {e}')
trace.append(inspect.getgeneratorstate(gi))
try:
    next(gi)
except StopIteration:
    trace.append('StopIteration')
print(trace)
