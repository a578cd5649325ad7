# The Python twin of `a2_1_next_is_send_none` in tests/generator_semantics.rs.

trace = []
def g():
    n = 0
    while True:
        x = yield n
        trace.append(f'got {x}')
        n += 1
gi = g()
trace.append(f'yielded {next(gi)}')
trace.append(f'yielded {next(gi)}')
trace.append(f'yielded {gi.send(None)}')
trace.append(f'yielded {gi.send(3)}')
print(trace)
