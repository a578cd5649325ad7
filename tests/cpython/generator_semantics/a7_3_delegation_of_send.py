# The Python twin of `a7_3_delegation_of_send` in tests/generator_semantics.rs.

trace = []
def g1():
    trace.append("Starting g1")
    x = yield "g1 ham"
    trace.append("g1 received %s" % (x,))
    yield from g2()
    x = yield "g1 eggs"
    trace.append("g1 received %s" % (x,))
    trace.append("Finishing g1")
def g2():
    trace.append("Starting g2")
    x = yield "g2 spam"
    trace.append("g2 received %s" % (x,))
    x = yield "g2 more spam"
    trace.append("g2 received %s" % (x,))
    trace.append("Finishing g2")
g = g1()
y = next(g)
x = 1
try:
    while 1:
        y = g.send(x)
        trace.append("Yielded %s" % (y,))
        x += 1
except StopIteration:
    pass
print(trace)
