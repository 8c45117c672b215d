/**
 * The launcher's contract with plain node workers (no addon, no process group): torchrun's
 * environment, and what happens when a worker fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';
import { launch, LaunchError } from '../../src/dist/launch';

const KEYS = ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'OMP_NUM_THREADS'];

function nodeWorker(source: string): { command: string; args: string[] } {
  return { command: process.execPath, args: ['-e', source] };
}

test('each worker gets torchrun\'s variables: global ranks of this node, one thread, the same master', { timeout: 60_000 }, async () => {
  const out = tmpDir('launch-env');
  await launch({
    nprocPerNode: 2, nnodes: 2, nodeRank: 1, masterAddr: '127.0.0.1', masterPort: 29999, log: () => {},
    ...nodeWorker(`require('fs').writeFileSync(require('path').join(${JSON.stringify(out)}, process.env.LOCAL_RANK + '.json'),
      JSON.stringify(Object.fromEntries(${JSON.stringify(KEYS)}.map((k) => [k, process.env[k]]))))`),
  });
  const seen = [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(out, `${r}.json`), 'utf8')));
  assert.deepEqual(seen, [0, 1].map((local) => ({
    RANK: String(2 + local), WORLD_SIZE: '4', LOCAL_RANK: String(local), LOCAL_WORLD_SIZE: '2', GROUP_RANK: '1',
    MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29999', OMP_NUM_THREADS: '1',
  })));
});

test('a worker that fails: the others get SIGTERM, the error names its rank, exit code and last error line', { timeout: 60_000 }, async () => {
  const out = tmpDir('launch-fail');
  const lines: string[] = [];
  const err = await launch({
    nprocPerNode: 3, graceMs: 30_000, log: (l) => lines.push(l),
    // Rank 1 fails once the others are up; they would sleep for a minute unless stopped.
    ...nodeWorker(`const fs = require('fs'), path = require('path'), out = ${JSON.stringify(out)}, r = process.env.RANK;
      process.on('SIGTERM', () => { fs.writeFileSync(path.join(out, 'term' + r), ''); process.exit(143); });
      fs.writeFileSync(path.join(out, 'up' + r), '');
      const up = () => ['0', '1', '2'].every((k) => fs.existsSync(path.join(out, 'up' + k)));
      if (r === '1') { const t = setInterval(() => { if (up()) { clearInterval(t); console.error('Error: bad shard 7'); process.exit(3); } }, 20); }
      else setTimeout(() => {}, 60_000);`),
  }).then(() => assert.fail('launch succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError);
  assert.match(err.message, /^rank 1 \(local rank 1, pid \d+\) exited with code 3: Error: bad shard 7/);
  // The others exited 143 from their SIGTERM handlers: stopped, not failed.
  assert.deepEqual(err.failures.map((f) => [f.rank, f.code]), [[1, 3]]);
  // The others were asked to stop (and did, well before the grace period's SIGKILL).
  assert.ok(fs.existsSync(path.join(out, 'term0')) && fs.existsSync(path.join(out, 'term2')));
  assert.ok(lines.some((l) => /stopping rank 0, rank 2/.test(l)), lines.join('\n'));
});

test('a command that cannot start is a failure naming it', { timeout: 30_000 }, async () => {
  const err = await launch({ nprocPerNode: 1, command: '/nonexistent/worker', args: [], log: () => {} }).then(
    () => assert.fail('launch succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError);
  assert.match(err.message, /^rank 0 .*: cannot start \/nonexistent\/worker: .*ENOENT/);
});
