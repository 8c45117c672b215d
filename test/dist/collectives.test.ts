/**
 * c10d collectives between real processes (2 workers on 127.0.0.1, started by our launcher with
 * torchrun's environment): all-reduce in every op, broadcast and barrier, against the values the
 * test computes itself from what each rank contributed. Float64 sums of two numbers are exact
 * roundings whatever the order, so the results must match bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';
import { runWorkers, workerScript } from './run-workers';
import { rankValues, BROADCAST_ROOT } from './workers/collectives-values';

interface RankResult {
  rank: number; worldSize: number; threads: number;
  env: { rank: number; worldSize: number; localRank: number; localWorldSize: number; masterAddr: string; masterPort: number; agentStorePrefix: string | null };
  sum: number[]; max: number[]; min: number[]; product: number[]; intSum: number[]; broadcast: number[];
  markerSeenAfterBarrier: boolean;
  mismatch: string;
  afterDestroy: string;
}

/** Checks what the workers wrote to out against the values computed here; returns their environments. */
function checkResults(out: string): RankResult['env'][] {
  const results = [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')) as RankResult);
  const [a, b] = [rankValues(0), rankValues(1)];
  const expected = {
    sum: a.floats.map((x, i) => x + b.floats[i]),
    max: a.floats.map((x, i) => Math.max(x, b.floats[i])),
    min: a.floats.map((x, i) => Math.min(x, b.floats[i])),
    product: a.floats.map((x, i) => x * b.floats[i]),
    intSum: a.ints.map((x, i) => x + b.ints[i]),
    broadcast: rankValues(BROADCAST_ROOT).floats,
  };
  // The sums round (0.1 + 0.4 is not 0.5 in binary; the check would pass on a wrong sum only by luck).
  assert.notDeepEqual(expected.sum, expected.max);
  for (const r of results) {
    assert.equal(r.worldSize, 2);
    assert.deepEqual(r.env, { ...r.env, rank: r.rank, worldSize: 2, localRank: r.rank, localWorldSize: 2, masterAddr: '127.0.0.1' });
    assert.equal(r.threads, 1, `rank ${r.rank}: one intra-op thread per worker`);
    for (const k of ['sum', 'max', 'min', 'product', 'intSum', 'broadcast'] as const) {
      assert.deepEqual(r[k], expected[k], `rank ${r.rank} ${k}`);
    }
    assert.equal(r.markerSeenAfterBarrier, true, `rank ${r.rank}: the file written before the barrier`);
    assert.equal(r.afterDestroy, 'process group used after destroy()');
    assert.match(r.mismatch, new RegExp(`^DistError: dist parameter sync on rank ${r.rank} of 2: the ranks hold different numbers of tensors to sync \\(from 1 to 2; this rank ${r.rank + 1}\\)`));
  }
  assert.deepEqual(results.map((r) => r.rank), [0, 1]);
  return results.map((r) => r.env);
}

test('2 processes: all-reduce, broadcast and barrier give the hand-computed values on both ranks', { timeout: 120_000 }, async () => {
  const out = tmpDir('dist-collectives');
  await runWorkers('collectives-worker', [out]);
  const envs = checkResults(out);
  assert.deepEqual(envs.map((e) => e.agentStorePrefix), [null, null]);
});

const TORCHRUN = '/usr/bin/torchrun';

test('under torchrun --no_python the same worker joins through torchrun\'s agent store and gets the same values',
  { timeout: 120_000, skip: fs.existsSync(TORCHRUN) ? false : `${TORCHRUN} is missing (Debian's python3-torch)` }, async () => {
    const out = tmpDir('dist-torchrun');
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
        const p = (server.address() as net.AddressInfo).port;
        server.close(() => resolve(p));
      });
    });
    // --redirects/--tee 2: Debian's torchrun 1.13 on Python 3.11 cannot parse their default 0.
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(TORCHRUN, ['--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port', String(port),
        '--redirects', '2', '--tee', '2', '--log_dir', path.join(out, 'logs'), '--no_python', process.execPath, workerScript('collectives-worker'), out],
      { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => { stderr += d; });
      // torchrun ends its workers on SIGTERM: a hung run fails the test instead of outliving it.
      const limit = setTimeout(() => child.kill('SIGTERM'), 150_000);
      child.on('error', reject);
      child.on('close', (code) => { clearTimeout(limit); resolve({ code, stderr }); });
    });
    assert.equal(r.code, 0, r.stderr);
    const envs = checkResults(out);
    assert.deepEqual(envs.map((e) => [e.masterPort, e.agentStorePrefix]), [[port, '/worker/attempt_0'], [port, '/worker/attempt_0']]);
  });
