# SPDX-License-Identifier: MIT
"""Python peer of bench/capture: subprocess.run(capture_output=True), i.e.
Popen.communicate, of a child writing BYTES, TIMES times in a row (1
unless given), timed together.

    py_capture.py head|flood|small|split BYTES HELPER [TIMES]
"""
import json
import subprocess
import sys
import time

writer, want, helper = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times = int(sys.argv[4]) if len(sys.argv) > 4 else 1
if writer == "head":
    cmd = ["/usr/bin/head", "-c%d" % want, "/dev/zero"]
elif writer == "flood":
    cmd = [helper, "flood", str(want), "0"]
elif writer == "small":
    cmd = [helper, "flood", str(want), "0", "4096"]
elif writer == "split":
    cmd = [helper, "flood", str(want // 2), str(want // 2)]
    want = want // 2 * 2
else:
    sys.exit("py_capture: unknown writer %s" % writer)
t0 = time.monotonic()
for _ in range(times):
    r = subprocess.run(cmd, capture_output=True)
    got = len(r.stdout) + len(r.stderr)
    if got != want:
        sys.exit("py_capture: %d bytes of %d" % (got, want))
    del r
t = time.monotonic() - t0
print(json.dumps({"method": "python-communicate", "seconds": t, "count": times,
                  "bytes": want * times, "engine": sys.version.split()[0]}))
