# The Python twin of `a1_1_new_generator_is_created_and_runs_no_body_code` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    trace.append('body')
    yield 1
gi = g()
trace.append(inspect.getgeneratorstate(gi))
print(trace)
