"""What trusting the content digest costs: hashing a checkpoint-sized file every time vs the identity memo.

    python benchmarks/bench_digest.py [--gb 1.87]

Writes a file of random bytes (the size of the released XTTS-v2 model.pth by default) under the xtts_qa cache,
then prints: a cold blake2b pass over it (what hashing on every check would cost), the memoised lookup
(:func:`xtts_qa.cache.file_digest` with an unchanged file), and that a same-size, same-mtime swap is noticed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

from xtts_qa.cache import _memo, cache_dir, file_digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.87, help="file size in GB (default: the released model.pth)")
    args = parser.parse_args()
    folder = cache_dir("bench-digest")
    path = folder / "model.pth"
    size = int(args.gb * 1e9)
    chunk = os.urandom(1 << 24)
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            fh.write(chunk[: min(len(chunk), size - written)])
            written += min(len(chunk), size - written)
    try:
        _memo.clear()
        t0 = time.perf_counter()
        first = file_digest(path)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = file_digest(path)
        memo = time.perf_counter() - t0
        # swap in a file of the same size and mtime (what cp -p / rsync -a of another fine-tune produces)
        stat = path.stat()
        other = folder / "other.pth"
        shutil.copyfile(path, other)
        with open(other, "r+b") as fh:
            fh.write(b"\x00" * 16)
        os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        os.replace(other, path)
        swapped = file_digest(path)
        print(f"file: {size / 1e9:.2f} GB")
        print(f"hash every time (cold blake2b pass): {cold:.2f} s ({cold / (size / 1e9):.2f} s/GB)")
        print(f"memoised lookup, unchanged file:     {memo * 1e3:.3f} ms")
        print(f"same size + mtime swap noticed:      {swapped != first} (digest {first[:12]} -> {swapped[:12]})")
        assert again == first
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
