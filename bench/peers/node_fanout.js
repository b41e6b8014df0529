// SPDX-License-Identifier: MIT
// Node peer of bench/fanout: JOBS runs of CMD through child_process.spawn,
// at most PAR at once, stdout and stderr captured.  The clock starts once
// node is up: its start-up is not counted.
//
//   node node_fanout.js JOBS PAR CMD [ARG...]
'use strict';
const { spawn } = require('child_process');

function run(n, par, cmd) {
  return new Promise((resolve, reject) => {
    let started = 0, done = 0, bytes = 0;
    const next = () => {
      if (started >= n) return;
      started++;
      const c = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      const chunks = [];
      c.stdout.on('data', (d) => chunks.push(d));
      c.stderr.on('data', (d) => chunks.push(d));
      c.on('error', reject);
      c.on('close', () => {
        for (const d of chunks) bytes += d.length;
        if (++done === n) resolve(bytes); else next();
      });
    };
    for (let i = 0; i < Math.min(par, n); i++) next();
  });
}

(async () => {
  const n = +process.argv[2], par = +process.argv[3], cmd = process.argv.slice(4);
  await run(Math.min(n, 10), par, cmd);  // warm-up
  const t0 = process.hrtime.bigint();
  const bytes = await run(n, par, cmd);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ method: 'node', seconds: s, count: n, bytes,
                               engine: process.version }));
})();
