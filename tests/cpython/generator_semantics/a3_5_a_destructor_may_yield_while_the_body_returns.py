# The Python twin of `a3_5_a_destructor_may_yield_while_the_body_returns` in tests/generator_semantics.rs.

trace = []
def g3():
    try:
        return 'r'
    finally:
        yield 1
gi = g3()
trace.append(f'yielded {next(gi)}')
try:
    next(gi)
except StopIteration as e:
    trace.append(f'returned {e.value}')
print(trace)
