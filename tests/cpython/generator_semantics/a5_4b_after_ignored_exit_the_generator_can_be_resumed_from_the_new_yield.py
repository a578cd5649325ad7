# The Python twin of `a5_4b_after_ignored_exit_the_generator_can_be_resumed_from_the_new_yield` in tests/generator_semantics.rs.

trace = []
def g():
    try:
        try:
            yield 1
        except GeneratorExit:
            trace.append('caught')
        yield 2
    finally:
        trace.append('finally')
gi = g()
next(gi)
try:
    gi.close()
except RuntimeError:
    trace.append('RuntimeError')
try:
    next(gi)
except StopIteration:
    trace.append('StopIteration')
print(trace)
