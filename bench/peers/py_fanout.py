# SPDX-License-Identifier: MIT
"""Python peers of bench/fanout: JOBS runs of CMD, PAR at once, stdout and
stderr captured.  The clock starts after the imports: interpreter start-up
is not counted.

    py_fanout.py futures|asyncio JOBS PAR CMD [ARG...]
"""
import asyncio
import concurrent.futures
import json
import subprocess
import sys
import time


def run_futures(n, par, cmd):
    def one(_):
        r = subprocess.run(cmd, capture_output=True)
        return len(r.stdout) + len(r.stderr)
    with concurrent.futures.ThreadPoolExecutor(max_workers=par) as ex:
        return sum(ex.map(one, range(n)))


def run_asyncio(n, par, cmd):
    async def main():
        sem = asyncio.Semaphore(par)

        async def one():
            async with sem:
                p = await asyncio.create_subprocess_exec(
                    *cmd, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                out, err = await p.communicate()
                return len(out) + len(err)
        return sum(await asyncio.gather(*(one() for _ in range(n))))
    return asyncio.run(main())


def main():
    method, n, par, cmd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    fn = {"futures": run_futures, "asyncio": run_asyncio}[method]
    fn(min(n, 10), par, cmd)  # warm-up
    t0 = time.monotonic()
    nbytes = fn(n, par, cmd)
    t = time.monotonic() - t0
    print(json.dumps({"method": "python-" + method, "seconds": t, "count": n,
                      "bytes": nbytes, "engine": sys.version.split()[0]}))


main()
