"""A small CPU + file workload for python3: a prime sieve, then 200 small files written,
read back and removed in a temporary directory (the first argument)."""
import os
import sys


def sieve(limit):
    composite = bytearray(limit + 1)
    count = 0
    for n in range(2, limit + 1):
        if not composite[n]:
            count += 1
            composite[n * n :: n] = b"\x01" * len(composite[n * n :: n])
    return count


def files(directory):
    total = 0
    for i in range(200):
        path = os.path.join(directory, f"f{i}.txt")
        with open(path, "w") as f:
            f.write(f"line {i}\n" * 100)
        with open(path) as f:
            total += len(f.read())
        os.unlink(path)
    return total


if __name__ == "__main__":
    assert sieve(300_000) == 25997
    assert files(sys.argv[1]) > 0
