# The Python twin of `a6_1_resume_from_inside_is_running_error_and_escaping_it_closes` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    yield next(me)
me = g()
try:
    next(me)
except ValueError as e:
    trace.append(f'ValueError: {e}')
trace.append(inspect.getgeneratorstate(me))
print(trace)
