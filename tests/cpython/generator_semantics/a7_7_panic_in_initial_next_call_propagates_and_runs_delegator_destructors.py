# The Python twin of `a7_7_panic_in_initial_next_call_propagates_and_runs_delegator_destructors` in tests/generator_semantics.rs.

trace = []
def g1():
    try:
        trace.append("Starting g1")
        yield from g2()
    finally:
        trace.append("Finishing g1")
def g2():
    try:
        trace.append("Starting g2")
        raise ValueError("spanish inquisition occurred")
    finally:
        trace.append("Finishing g2")
    yield
try:
    for x in g1():
        trace.append("Yielded %s" % (x,))
except ValueError as e:
    trace.append(f'caught {e}')
print(trace)
