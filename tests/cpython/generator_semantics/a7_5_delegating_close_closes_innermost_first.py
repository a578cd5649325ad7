# The Python twin of `a7_5_delegating_close_closes_innermost_first` in tests/generator_semantics.rs.

trace = []
def g1():
    try:
        trace.append("Starting g1")
        yield "g1 ham"
        yield from g2()
        yield "g1 eggs"
    finally:
        trace.append("Finishing g1")
def g2():
    try:
        trace.append("Starting g2")
        yield "g2 spam"
        yield "g2 more spam"
    finally:
        trace.append("Finishing g2")
g = g1()
for i in range(2):
    x = next(g)
    trace.append("Yielded %s" % (x,))
trace.append(f'close returned {g.close()}')
print(trace)
