/**
 * DistributedDataParallel on c10d's Reducer, 2 processes × 1 thread on 127.0.0.1, against the
 * same training in this one process: tiny float64 CNNs, SGD with momentum and weight decay,
 * 10 steps, global batch 8 split the DistributedSampler way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync, spawn } from 'node:child_process';
import * as net from 'node:net';
import { tmpDir } from '../helpers/tmp';
import { runWorkers } from './run-workers';
import {
  STEPS, ModelKind, makeModel, makeData, makeOptimizer, backwardOn, parameterValues, batchIndices, SGD_OPTIONS,
} from './workers/ddp-training';

// Debian's python3-torch (the pyenv python3 on PATH has no torch), as test/reference/README.md says.
const PYTHON = '/usr/bin/python3';
const TORCHRUN = '/usr/bin/torchrun';
const REFERENCE = path.resolve(__dirname, '..', '..', '..', 'test', 'reference', 'ddp_reference.py');
const pytorchMissing = ((): string | false => {
  if (!fs.existsSync(TORCHRUN)) return `${TORCHRUN} is missing (Debian's python3-torch)`;
  const r = spawnSync(PYTHON, ['-c', 'import torch.distributed as d; assert d.is_gloo_available()'], { stdio: 'ignore' });
  return r.status === 0 ? false : `${PYTHON} has no torch.distributed with Gloo`;
})();

type Params = Record<string, number[]>;

// The plain 2-rank run, shared by the test against one process and the one against PyTorch.
let plainRun: Promise<{ initial: Params; final: Params }[]> | undefined;
const plainTwoRanks = (): Promise<{ initial: Params; final: Params }[]> => (plainRun ??= trainTwoRanks('plain'));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** PyTorch's DDP (torchrun, 2 processes) on the same data, initial weights and batches; rank 0's final parameters. */
async function pytorchDdp(): Promise<Params> {
  const dir = tmpDir('dist-ddp-pytorch');
  const data = makeData();
  const model = makeModel('plain', 7);
  const spec = {
    x: { shape: data.x.shape, data: data.x.toArray() }, y: data.y.toArray(),
    params: Object.fromEntries(model.namedParameters().map(([n, p]) => [n, { shape: p.shape, data: p.detach().toArray() }])),
    batches: Array.from({ length: STEPS }, (_, step) => [0, 1].map((rank) => batchIndices(step, rank, 2))),
    sgd: { lr: SGD_OPTIONS.lr, momentum: SGD_OPTIONS.momentum, weight_decay: SGD_OPTIONS.weightDecay },
  };
  model.dispose();
  data.x.dispose();
  data.y.dispose();
  const [input, output] = [path.join(dir, 'in.json'), path.join(dir, 'out.json')];
  fs.writeFileSync(input, JSON.stringify(spec));
  const port = await freePort();
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    // --redirects/--tee 2: Debian's torchrun 1.13 on Python 3.11 cannot parse their default 0
    // (IntFlag no longer iterates its zero member), so stderr is teed, which it can.
    const child = spawn(TORCHRUN, ['--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port', String(port),
      '--redirects', '2', '--tee', '2', '--log_dir', path.join(dir, 'logs'), REFERENCE, input, output],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    // torchrun ends its workers on SIGTERM: a hung run fails the test instead of outliving it.
    const limit = setTimeout(() => child.kill('SIGTERM'), 150_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(limit); resolve({ code, stderr }); });
  });
  assert.equal(r.code, 0, `torchrun failed:\n${r.stderr}`);
  return (JSON.parse(fs.readFileSync(output, 'utf8')) as { final: Params }).final;
}

async function trainTwoRanks(kind: ModelKind): Promise<{ initial: Params; final: Params }[]> {
  const out = tmpDir(`dist-ddp-${kind}`);
  await runWorkers('ddp-worker', [out, kind]);
  return [0, 1].map((r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')));
}

/** One process playing `parts` ranks: each micro-batch's loss scaled by 1/parts, gradients accumulated. */
function trainOneProcess(kind: ModelKind, parts: number): { initial: Params; final: Params } {
  const data = makeData();
  const model = makeModel(kind, 7);
  const initial = parameterValues(model);
  const opt = makeOptimizer(model);
  for (let step = 0; step < STEPS; step++) {
    opt.zeroGrad();
    for (let part = 0; part < parts; part++) backwardOn(model, data, step, part, parts, { scale: 1 / parts });
    opt.step();
  }
  const final = parameterValues(model);
  opt.dispose();
  model.dispose();
  data.x.dispose();
  data.y.dispose();
  return { initial, final };
}

function maxDiff(a: Params, b: Params): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let m = 0;
  for (const k of Object.keys(a)) a[k].forEach((v, i) => { m = Math.max(m, Math.abs(v - b[k][i])); });
  return m;
}

test('plain CNN: 2 ranks end within 1e-10 of one process on the global batch, both ranks bit-identical', { timeout: 180_000 }, async (t) => {
  const [r0, r1] = await plainTwoRanks();
  const one = trainOneProcess('plain', 1);
  // Rank 1 started elsewhere, so the broadcast from rank 0 mattered; training moved the weights.
  assert.ok(maxDiff(r0.initial, r1.initial) > 1e-3);
  assert.deepEqual(r0.initial, one.initial);
  assert.ok(maxDiff(one.initial, one.final) > 1e-2);
  assert.deepEqual(r1.final, r0.final, 'ranks differ');
  const d = maxDiff(r0.final, one.final);
  t.diagnostic(`2 ranks vs 1 process: max |Δ| ${d}`);
  assert.ok(d <= 1e-10, `2 ranks vs 1 process: max |Δ| ${d}`);
});

test('plain CNN: 2 ranks end within 1e-9 of PyTorch\'s own DDP (torchrun, Gloo) on the same data, weights and batches',
  { timeout: 240_000, skip: pytorchMissing }, async (t) => {
    const [[r0], theirs] = await Promise.all([plainTwoRanks(), pytorchDdp()]);
    const d = maxDiff(r0.final, theirs);
    t.diagnostic(`ours vs PyTorch DDP: max |Δ| ${d}`);
    assert.ok(d <= 1e-9, `ours vs PyTorch DDP: max |Δ| ${d}`);
    assert.ok(maxDiff(r0.initial, theirs) > 1e-2, 'PyTorch trained');
  });

test('gated CNN with findUnused: paths used by one rank, by both and by none; within 1e-10 of one process averaging the ranks\' micro-batches', { timeout: 180_000 }, async (t) => {
  const [r0, r1] = await trainTwoRanks('gated');
  const one = trainOneProcess('gated', 2);
  assert.deepEqual(r1.final, r0.final, 'ranks differ');
  const d = maxDiff(r0.final, one.final);
  t.diagnostic(`2 ranks vs 1 process: max |Δ| ${d}`);
  assert.ok(d <= 1e-10, `2 ranks vs 1 process: max |Δ| ${d}`);
  // The head no step uses keeps rank 0's initial weights (no gradient, so no decay either).
  assert.deepEqual(r0.final['neverUsed.weight'], r0.initial['neverUsed.weight']);
  // Both paths trained: each was skipped by some rank in some step, and used in others.
  assert.ok(maxDiff({ w: one.initial['pathA.weight'] }, { w: r0.final['pathA.weight'] }) > 1e-3);
  assert.ok(maxDiff({ w: one.initial['pathB.weight'] }, { w: r0.final['pathB.weight'] }) > 1e-3);
});
