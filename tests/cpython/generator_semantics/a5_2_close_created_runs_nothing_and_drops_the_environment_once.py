# The Python twin of `a5_2_close_created_runs_nothing_and_drops_the_environment_once` in tests/generator_semantics.rs.

import inspect
trace = []
class Env:
    def __del__(self):
        trace.append('drop env')
def g(env):
    try:
        trace.append('body')
        yield 1
    finally:
        trace.append('finally')
gi = g(Env())
trace.append(f'close returned {gi.close()}')
trace.append(inspect.getgeneratorstate(gi))
trace.append(f'close again returned {gi.close()}')
del gi
trace.append('after del')
print(trace)
