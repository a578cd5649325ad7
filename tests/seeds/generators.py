import inspect


def section(title):
    print(f"== {title} ==")


# 1. Counting: a generator iterated by a for loop.
def counter(start, stop):
    n = start
    while n < stop:
        yield n
        n += 1


section("counting")
for n in counter(1, 4):
    print(f"count {n}")
print(f"list(counter(5, 8)) = {list(counter(5, 8))}")


# 2. A running average fed by send().
def averager():
    total = 0.0
    count = 0
    average = None
    while True:
        value = yield average
        total += value
        count += 1
        average = total / count


section("running average (send)")
avg = averager()
print(f"next(avg) -> {next(avg)}")
for value in [10, 30, 5, 6]:
    print(f"send({value}) -> {avg.send(value):.2f}")


# 3. throw() handled inside the generator.
class JobError(Exception):
    pass


def worker():
    done = 0
    while True:
        try:
            job = yield done
        except JobError as e:
            if str(e) == "fatal":
                raise
            print(f"  worker handled JobError: {e}")
            continue
        done += 1
        print(f"  worker did {job}")


section("throw")
w = worker()
print(f"next(w) -> {next(w)}")
print(f"send('a') -> {w.send('a')}")
print(f"throw(JobError('disk full')) -> {w.throw(JobError('disk full'))}")
print(f"send('b') -> {w.send('b')}")
try:
    w.throw(JobError("fatal"))
except JobError as e:
    print(f"throw(JobError('fatal')) raised JobError: {e}")
print(f"state: {inspect.getgeneratorstate(w)}")


# 4. close() runs the cleanup code.
def reader():
    print("  open")
    try:
        n = 0
        while True:
            yield f"line {n}"
            n += 1
    finally:
        print("  cleanup")


section("close")
r = reader()
print(next(r))
print(next(r))
r.close()
print(f"state: {inspect.getgeneratorstate(r)}")


# 5. A yield-from pipeline: the sub-generator's return value is used.
def numbers(text):
    total = 0
    for word in text.split():
        if word.isdigit():
            total += int(word)
            yield int(word)
    return total


def summarise(lines):
    grand_total = 0
    for line in lines:
        total = yield from numbers(line)
        print(f"  subtotal {total} for: {line}")
        grand_total += total
    return grand_total


section("yield from")
s = summarise(["3 apples and 4 pears", "10 plums"])
while True:
    try:
        print(f"got {next(s)}")
    except StopIteration as stop:
        print(f"returned {stop.value}")
        break


# 6. Yielding several calls deep. Python needs `yield from` at every level;
#    in Rust the levels are plain functions handed the yielder.
def walk(tree, depth):
    for node in tree:
        if isinstance(node, list):
            yield from walk(node, depth + 1)
        else:
            yield f"depth {depth}: {node}"


section("yield from several calls deep")
for line in walk(["a", ["b", ["c", "d"], "e"], "f"], 0):
    print(line)
