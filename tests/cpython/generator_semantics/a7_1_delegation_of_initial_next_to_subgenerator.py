# The Python twin of `a7_1_delegation_of_initial_next_to_subgenerator` in tests/generator_semantics.rs.

trace = []
def g1():
    trace.append("Starting g1")
    yield from g2()
    trace.append("Finishing g1")
def g2():
    trace.append("Starting g2")
    yield 42
    trace.append("Finishing g2")
for x in g1():
    trace.append("Yielded %s" % (x,))
print(trace)
