// Raw argon2id verification rate for bench/sso/run.sh: how many password
// checks per second this machine can do with the hub's parameters, so the
// code-flow figures can be read against it (every flow verifies one password).
//
// Uses npm `argon2` (the same binding oidc-provider-server.mjs uses): one
// hash is made, then WORKERS loops each await argon2.verify() back to back for
// DURATION seconds. The binding runs each verification on libuv's thread pool
// (4 threads by default), so WORKERS loops means WORKERS verifications in
// parallel: 2 matches the machine's 2 cores.
//
// Environment: WORKERS [2], DURATION s [10], ARGON2_M KiB [19456], ARGON2_T [2],
// ARGON2_P [1], OIDC_PROVIDER_DIR (folder holding node_modules/argon2) [cwd].
// Prints: RESULT verifications=N duration_s=S per_s=R p50_ms=A workers=W m=… t=… p=…

import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(path.resolve(process.env.OIDC_PROVIDER_DIR || process.cwd()), 'package.json'));
const argon2 = require('argon2');

const workers = Number(process.env.WORKERS || 2);
const duration = Number(process.env.DURATION || 10) * 1000;
const options = {
  type: argon2.argon2id,
  memoryCost: Number(process.env.ARGON2_M || 19456),
  timeCost: Number(process.env.ARGON2_T || 2),
  parallelism: Number(process.env.ARGON2_P || 1),
};

const password = 'riverside-demo-2026';
const hash = await argon2.hash(password, options);
// One untimed verification: loads the binding's code paths and pages the
// memory in, as a server's first sign-in would.
if (!(await argon2.verify(hash, password))) throw new Error('argon2.verify failed');

const times = [];
const t0 = performance.now();
const deadline = t0 + duration;
await Promise.all(Array.from({ length: workers }, async () => {
  while (performance.now() < deadline) {
    const s = performance.now();
    if (!(await argon2.verify(hash, password))) throw new Error('argon2.verify failed');
    times.push(performance.now() - s);
  }
}));
const elapsed = (performance.now() - t0) / 1000;
times.sort((a, b) => a - b);
const version = require('argon2/package.json').version;
console.log(`RESULT verifications=${times.length} duration_s=${elapsed.toFixed(3)} per_s=${(times.length / elapsed).toFixed(2)} `
  + `p50_ms=${times[Math.floor(times.length / 2)].toFixed(1)} workers=${workers} m=${options.memoryCost} t=${options.timeCost} p=${options.parallelism} argon2=${version}`);
