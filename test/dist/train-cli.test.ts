/**
 * `adafilter train --nproc-per-node 2`, real processes on 127.0.0.1 (2 × 1 thread), against one
 * process with the same global batch. finetune with the backbone frozen through its last block
 * (BN there in eval mode), so the per-rank micro-batches change nothing but the summation order
 * of the head's gradients, while augmentation stays on: each rank trains on its share of the same
 * augmented global batch. Bad dist flags are one line and exit 2, before any worker starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeSafetensors } from '../../src/io/safetensors';
import * as net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, ROOT, cli, logLines, tempFiles, tmpDir, SMALL } from '../train/helpers';

const TORCHRUN = '/usr/bin/torchrun';
// The 2-process run of the first test, which torchrun's run is held against.
let launched: string | null = null;

const HEAD_ONLY = ['train', '--method', 'finetune', '--freeze-through', 'layer3.2', ...SMALL, '--steps', '6'];

function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const p = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(p));
    });
  });
}

/** Largest |a − b| / max(1, |a|) over every tensor of two safetensors files with the same names. */
function worstDifference(a: string, b: string): { worst: number; tensors: number } {
  const [x, y] = [a, b].map((f) => decodeSafetensors(fs.readFileSync(f), f).tensors);
  assert.deepEqual([...y.keys()].sort(), [...x.keys()].sort());
  let worst = 0;
  for (const [k, t] of x) {
    const u = y.get(k)!.toArray();
    t.toArray().forEach((v, i) => { worst = Math.max(worst, Math.abs(v - u[i]) / Math.max(1, Math.abs(v))); });
  }
  for (const t of [...x.values(), ...y.values()]) t.dispose();
  return { worst, tensors: x.size };
}

test('train --nproc-per-node 2 equals one process on the same global batch; only rank 0 wrote the run folder', { timeout: 300_000 }, (t) => {
  const one = path.join(tmpDir('dp-one'), 'run'), two = path.join(tmpDir('dp-two'), 'run');
  const r1 = cli(...HEAD_ONLY, '--out', one);
  assert.equal(r1.status, 0, r1.stderr);
  const r2 = cli(...HEAD_ONLY, '--out', two, '--nproc-per-node', '2');
  assert.equal(r2.status, 0, r2.stderr);
  launched = two;
  // Rank 0 alone reports, and alone appends to the log: two epochs, two lines (two writers would leave four).
  assert.equal(r2.stdout.split('\n').filter((l) => l.startsWith('finetune: test accuracy')).length, 1, r2.stdout);
  assert.equal(logLines(two), 2);
  assert.deepEqual(fs.readdirSync(two).sort(), fs.readdirSync(one).sort());
  assert.deepEqual(tempFiles(two), []);
  // Weights: float32 sums in another order (4 + 4 images, then DDP's average, against 8); momentum as well.
  const weights = worstDifference(path.join(one, 'model.safetensors'), path.join(two, 'model.safetensors'));
  const checkpoint = worstDifference(path.join(one, 'checkpoint.safetensors'), path.join(two, 'checkpoint.safetensors'));
  t.diagnostic(`2 ranks vs 1 process: weights ${weights.worst} over ${weights.tensors} tensors, checkpoint (with momentum) ${checkpoint.worst}`);
  assert.ok(weights.worst <= 1e-6, `weights differ by ${weights.worst}`);
  assert.ok(checkpoint.worst <= 1e-4, `checkpoint differs by ${checkpoint.worst}`);
  // The same images in the same steps: the summed training metrics and the sharded evaluation agree.
  const lines = (dir: string) => fs.readFileSync(path.join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const [l1, l2] = [lines(one), lines(two)];
  l1.forEach((e, i) => {
    assert.equal(l2[i].trainAcc, e.trainAcc);
    assert.equal(l2[i].valAcc, e.valAcc);
    assert.ok(Math.abs(l2[i].trainLoss - e.trainLoss) <= 1e-5 * e.trainLoss, `epoch ${i + 1} train loss ${l2[i].trainLoss} vs ${e.trainLoss}`);
    assert.ok(Math.abs(l2[i].valLoss - e.valLoss) <= 1e-5 * e.valLoss, `epoch ${i + 1} val loss ${l2[i].valLoss} vs ${e.valLoss}`);
  });
  const [res1, res2] = [one, two].map((d) => JSON.parse(fs.readFileSync(path.join(d, 'result.json'), 'utf8')));
  assert.equal(res2.bestEpoch, res1.bestEpoch);
  assert.equal(res2.test.examples, res1.test.examples);
  assert.deepEqual(res2.test.perClass, res1.test.perClass);
});

test('torchrun --no_python node bin/adafilter.js train: the workers join its agent store and train the same weights bit for bit',
  { timeout: 300_000, skip: fs.existsSync(TORCHRUN) ? false : `${TORCHRUN} is missing (Debian's python3-torch)` }, async () => {
    assert.ok(launched, 'the launcher\'s run of the first test');
    const root = tmpDir('dp-torchrun'), out = path.join(root, 'run');
    const port = await freePort();
    // --redirects/--tee 2: Debian's torchrun 1.13 on Python 3.11 cannot parse their default 0.
    const r = spawnSync(TORCHRUN, ['--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port', String(port), '--redirects', '2', '--tee', '2',
      '--log_dir', path.join(root, 'logs'), '--no_python', process.execPath, CLI, ...HEAD_ONLY, '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 280_000, killSignal: 'SIGTERM' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(logLines(out), 2);
    for (const f of ['model.safetensors', 'checkpoint.safetensors']) assert.equal(worstDifference(path.join(launched, f), path.join(out, f)).worst, 0, f);
  });

test('--nnodes 2: two launchers (one process each, as on two machines) meet at --master-addr:--master-port and train the same weights bit for bit', { timeout: 300_000 }, async () => {
  assert.ok(launched, 'the launcher\'s run of the first test');
  const out = path.join(tmpDir('dp-nodes'), 'run');
  const port = await freePort();
  const node = (rank: number) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, ...HEAD_ONLY, '--out', out, '--nproc-per-node', '1', '--nnodes', '2', '--node-rank', String(rank),
      '--master-addr', '127.0.0.1', '--master-port', String(port), '--dist-timeout', '120'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  const [n0, n1] = await Promise.all([node(0), node(1)]);
  assert.equal(n0.code, 0, n0.stderr);
  assert.equal(n1.code, 0, n1.stderr);
  // Node 1 holds rank 1 only: it trains silently and reports nothing.
  assert.match(n0.stdout, /finetune: test accuracy/);
  assert.equal(n1.stdout, '');
  for (const f of ['model.safetensors', 'checkpoint.safetensors']) assert.equal(worstDifference(path.join(launched, f), path.join(out, f)).worst, 0, f);
});

test('adafilter on 2 processes (skipped paths: find-unused; gate statistics: evaluation whole on every rank; precise BN): finishes with the replicas equal', { timeout: 300_000 }, () => {
  const out = path.join(tmpDir('dp-gated'), 'run');
  const r = cli('train', '--method', 'adafilter', ...SMALL, '--steps', '6', '--out', out, '--nproc-per-node', '2', '--json');
  // The run ends by checking every rank's parameters bit for bit (it fails otherwise).
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(result.method, 'adafilter');
  assert.ok(result.gates && result.gates.layers.length > 0, 'gate statistics of the test split');
  const log = fs.readFileSync(path.join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(log.map((l) => l.epoch), [1, 2]);
  assert.ok(log.every((l) => l.gates && Number.isFinite(l.gates.fraction)), 'each validation logs the gates');
  assert.deepEqual(tempFiles(out), []);
});

test('bad dist flags: one line naming the flag, exit 2, no worker started', () => {
  const out = path.join(tmpDir('dp-bad'), 'run');
  for (const [flags, says] of [
    [['--nproc-per-node', '0'], /--nproc-per-node: expected an integer >= 1/],
    [['--nnodes', '2'], /--nnodes: only with --nproc-per-node/],
    [['--nproc-per-node', '2', '--dist-backend', 'nccl'], /--dist-backend nccl: NCCL runs one GPU per rank; add --device cuda/],
    [['--nproc-per-node', '2', '--dist-backend', 'mpi'], /--dist-backend: expected gloo or nccl/],
    [['--nproc-per-node', '2', '--nnodes', '2', '--node-rank', '2'], /--node-rank 2: must be below --nnodes 2/],
    [['--nproc-per-node', '2', '--master-port', '70000'], /--master-port: expected an integer <= 65535/],
    [['--nproc-per-node', '2', '--dist-timeout', '0'], /--dist-timeout: expected seconds > 0/],
    [['--nproc-per-node', '2', '--auto'], /--auto: not with several processes yet/],
    [['--nproc-per-node', '2', '--nnodes', '3', '--node-rank', '1', '--batch', '5'], /--batch 5: the global batch is split over 6 processes/],
    [['--nproc-per-node', '2', '--lr=-1'], /lr: expected a number/],
  ] as [string[], RegExp][]) {
    const r = cli(...HEAD_ONLY, '--out', out, ...flags);
    assert.equal(r.status, 2, `${flags.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(lines[0], says);
    assert.doesNotMatch(r.stderr, /launch:/);
  }
  assert.equal(fs.existsSync(out), false);
});
