/**
 * What the group and the launcher do when a worker dies or hangs (2 processes on 127.0.0.1).
 * A killed worker closes its sockets, so the survivor's collective fails at once, long before the
 * group's timeout (the test's own timeout is shorter than the group's: waiting it out would fail
 * the test); a stopped worker keeps them open, so the survivor fails at the group's timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/tmp';
import { LaunchError } from '../../src/dist';
import { runWorkers, workerScript } from './run-workers';

const LAUNCH_JS = path.resolve(__dirname, '..', '..', 'src', 'dist', 'launch.js');

function run(cmd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('a worker SIGKILLed after step 1: the other fails on the closed connection, the launcher exits 1 naming rank 1', { timeout: 90_000 }, async () => {
  const out = tmpDir('dist-kill');
  const groupTimeoutMs = 600_000;
  const r = await run(process.execPath, [LAUNCH_JS, '--nproc-per-node', '2', '--grace', '20', '--',
    process.execPath, workerScript('steps-worker'), out, 'kill', String(groupTimeoutMs)]);
  assert.equal(r.code, 1, r.stderr);
  const summary = r.stderr.trim().split('\n').filter((l) => l.startsWith('launch: rank')).pop() ?? '';
  assert.match(summary, /^launch: rank 1 \(local rank 1, pid \d+\) was killed by SIGKILL/, r.stderr);
  // The survivor failed by itself (it ignores the launcher's SIGTERM), naming its rank and the peer.
  const error = fs.readFileSync(path.join(out, 'rank0.error'), 'utf8');
  assert.match(error, /^DistError: dist allReduce on rank 0 of 2: /);
  assert.match(error, /peer|closed|reset/i);
  assert.match(error, /\(the peer is rank 1\)$/);
  assert.doesNotMatch(error, /timed out|timeout/i);
  assert.match(summary, /then rank 0 \(local rank 0, pid \d+\) exited with code 1: DistError: dist allReduce on rank 0 of 2/);
  assert.equal(fs.readFileSync(path.join(out, 'rank1.step'), 'utf8'), '1');
});

test('a SIGSTOPped worker: the group fails at its timeout, the launcher names rank 0 and ends the stopped one', { timeout: 90_000 }, async () => {
  const out = tmpDir('dist-stop');
  const groupTimeoutMs = 3000;
  const err = await runWorkers('steps-worker', [out, 'stop', String(groupTimeoutMs)], { graceMs: 2000 }).then(
    () => assert.fail('the launch succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError, String(err));
  const [root] = err.failures;
  assert.equal(root.rank, 0, err.message);
  assert.equal(root.code, 1);
  assert.match(root.error ?? '', /^DistError: dist allReduce on rank 0 of 2: .*\b3000 ?ms\b/i, err.message);
  assert.match(root.error ?? '', /timed out|timeout/i);
  // The stopped worker never got past step 1 and is not running any more (launch() waited for it).
  assert.equal(fs.readFileSync(path.join(out, 'rank1.step'), 'utf8'), '1');
  assert.equal(fs.readFileSync(path.join(out, 'rank0.step'), 'utf8'), '1');
});

test('a rank that never comes: the rendezvous fails at the timeout naming the rank and the store', { timeout: 60_000 }, async () => {
  const port = 20000 + (process.pid % 20000);
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [workerScript('steps-worker'), tmpDir('dist-alone'), 'kill', '2000'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) },
    });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`DistError: dist init on rank 0 of 2 \\(store 127\\.0\\.0\\.1:${port}\\): .*(timed out|timeout)`, 'i'));
});

test('SIGTERM to the launcher: passed on to the workers, the launcher exits 1 saying it was stopped', { timeout: 60_000 }, async () => {
  const out = tmpDir('dist-launcher-term');
  const child = spawn(process.execPath, [LAUNCH_JS, '--nproc-per-node', '2', '--grace', '20', '--', process.execPath, '-e',
    `const fs = require('fs'), p = require('path').join(${JSON.stringify(out)}, process.env.RANK);
     process.on('SIGTERM', () => { fs.writeFileSync(p + '.term', ''); process.exit(143); });
     fs.writeFileSync(p + '.up', ''); setTimeout(() => {}, 60_000);`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  while (!['0', '1'].every((r) => fs.existsSync(path.join(out, `${r}.up`)))) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGTERM');
  assert.equal(await closed, 1, stderr);
  assert.match(stderr, /launch: received SIGTERM; stopping rank 0, rank 1/);
  assert.match(stderr, /launch: stopped by a signal before the workers finished/);
  for (const r of ['0', '1']) assert.ok(fs.existsSync(path.join(out, `${r}.term`)), `rank ${r} got SIGTERM`);
});
