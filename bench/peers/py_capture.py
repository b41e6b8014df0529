# SPDX-License-Identifier: MIT
"""Python peer of bench/capture: subprocess.run(capture_output=True), i.e.
Popen.communicate, of a child writing BYTES.

    py_capture.py head|flood|split BYTES HELPER
"""
import json
import subprocess
import sys
import time

writer, want, helper = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if writer == "head":
    cmd = ["/usr/bin/head", "-c%d" % want, "/dev/zero"]
elif writer == "flood":
    cmd = [helper, "flood", str(want), "0"]
else:
    cmd = [helper, "flood", str(want // 2), str(want // 2)]
    want = want // 2 * 2
t0 = time.monotonic()
r = subprocess.run(cmd, capture_output=True)
t = time.monotonic() - t0
got = len(r.stdout) + len(r.stderr)
if got != want:
    sys.exit("py_capture: %d bytes of %d" % (got, want))
print(json.dumps({"method": "python-communicate", "seconds": t, "count": 1,
                  "bytes": got, "engine": sys.version.split()[0]}))
