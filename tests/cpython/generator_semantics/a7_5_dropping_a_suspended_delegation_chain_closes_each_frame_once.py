# The Python twin of `a7_5_dropping_a_suspended_delegation_chain_closes_each_frame_once` in tests/generator_semantics.rs.

trace = []
def walk(depth):
    try:
        if depth > 0:
            yield from walk(depth - 1)
            yield depth
    finally:
        trace.append(f'leave {depth}')
gi = walk(4)
trace.append(f'yielded {next(gi)}')
trace.append(f'yielded {next(gi)}')
del gi
trace.append('after del')
print(trace)
