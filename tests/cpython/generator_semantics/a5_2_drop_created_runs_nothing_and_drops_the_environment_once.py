# The Python twin of `a5_2_drop_created_runs_nothing_and_drops_the_environment_once` in tests/generator_semantics.rs.

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
del gi
trace.append('after del')
print(trace)
