# The Python twin of `a2_3_bare_yield_and_yield_expressions` in tests/generator_semantics.rs.

trace = []
def g():
    yield
    count = 0
    while True:
        count += yield count
gi = g()
trace.append(f'yielded {next(gi)}')
trace.append(f'yielded {next(gi)}')
trace.append(f'yielded {gi.send(2)}')
trace.append(f'yielded {gi.send(5)}')
print(trace)
