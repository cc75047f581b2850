#!/usr/bin/env python3
"""What a power cut left of a file that powercut.so watched.

  powercut-replay.py DIR OUT SEED

DIR holds powercut.so's "stable" (the file at its last completed sync) and
"pending" (the writes since, in order: a line "OFFSET LENGTH", then the
data).  OUT becomes stable with a random subset of the pending writes let
through, page by page (4 KiB of the file at a time, as the page cache
writes back), in their order: any of them may have reached the disk before
the power went, none is certain to.  Prints what it let through.
"""
import random
import shutil
import sys

PAGE = 4096


def main():
    d, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    shutil.copyfile(d + "/stable", out)
    pending = open(d + "/pending", "rb").read()
    pos = writes = pages = through = 0
    with open(out, "r+b") as f:
        while pos < len(pending):
            nl = pending.find(b"\n", pos)
            if nl < 0:
                break                      # a record cut short by the kill
            off, length = (int(x) for x in pending[pos:nl].split())
            data = pending[nl + 1:nl + 1 + length]
            pos = nl + 1 + length
            if len(data) < length:
                break
            writes += 1
            at = off
            while at < off + length:
                end = min(off + length, (at // PAGE + 1) * PAGE)
                pages += 1
                if rng.random() < 0.5:
                    f.seek(at)
                    f.write(data[at - off:end - off])
                    through += 1
                at = end
    print("power cut: %d of %d pages of %d unsynced writes let through" % (through, pages, writes))


if __name__ == "__main__":
    main()
