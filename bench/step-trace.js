#!/usr/bin/env node
// What one step of `bench throughput` does, here and in PyTorch, without timing anything (issue 16):
//   node bench/step-trace.js [ARCH] [PRECISION] [MODE] [BATCH] [THREADS] [OUT_DIR]
// (defaults resnet20 bf16 train 32 1 /tmp/step-trace). Records every op libtorch dispatches during
// one steady-state step (engine/op-trace.ts here, PyTorch's profiler with record_shapes in
// bench/step-trace.py), writes both traces as JSON lines to OUT_DIR, and prints one JSON summary:
// the op counts per (name, input dtypes) that differ between the two stacks, the dtype casts each
// side does, and the minor page faults per step of 10 further steps (counts, stable on a busy machine).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const dist = path.resolve(__dirname, '..', 'dist', 'src');
const load = (p) => require(path.join(dist, p));
const { setNumThreads } = load('engine/runtime');
const { manualSeed, randn, randint } = load('engine/random');
const { tidy } = load('engine/scope');
const { noGrad } = load('engine/autograd');
const { inPrecision } = load('engine/precision');
const { traceOps } = load('engine/op-trace');
const { crossEntropy } = load('nn/functional');
const { buildModel } = load('models/registry');
const { SGD } = load('optim/sgd');

const [arch = 'resnet20', precision = 'bf16', mode = 'train', batch = '32', threads = '1', outDir = '/tmp/step-trace'] = process.argv.slice(2);
const FAULT_STEPS = 10;
fs.mkdirSync(outDir, { recursive: true });
const oursFile = path.join(outDir, `ours-${arch}-${precision}-${mode}.jsonl`);
const theirsFile = path.join(outDir, `pytorch-${arch}-${precision}-${mode}.jsonl`);

// The step bench/throughput.ts times.
setNumThreads(Number(threads));
manualSeed(0);
const model = buildModel(arch, 10);
const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const x = randn([Number(batch), 3, 32, 32]);
const y = randint(0, 10, [Number(batch)]);
const step = mode === 'train'
  ? () => tidy(() => {
    opt.zeroGrad();
    const loss = inPrecision(precision, 'cpu', () => crossEntropy(model.forward(x), y));
    loss.backward();
    opt.step();
  })
  : () => noGrad(() => tidy(() => { inPrecision(precision, 'cpu', () => model.forward(x)).sum().item(); }));
if (mode === 'train') model.train(); else model.eval();
step();
step(); // the momentum buffers exist from the second step on, as in the timed steady state
const ours = traceOps(step).ops.map(({ name, dtypes, shapes }) => ({ name, dtypes, shapes }));
fs.writeFileSync(oursFile, ours.map((r) => JSON.stringify(r)).join('\n') + '\n');
const f0 = process.resourceUsage().minorPageFault;
for (let i = 0; i < FAULT_STEPS; i++) step();
const oursFaults = (process.resourceUsage().minorPageFault - f0) / FAULT_STEPS;

const python = process.env.ADAFILTER_PYTHON ?? '/usr/bin/python3';
const peer = spawnSync(python, [path.join(__dirname, 'step-trace.py'), arch, precision, mode, batch, threads, theirsFile, String(FAULT_STEPS)], { encoding: 'utf8' });
if (peer.status !== 0) throw new Error(`bench/step-trace.py failed: ${peer.stderr.trim().split('\n').slice(-3).join(' | ')}`);
const theirsFaults = JSON.parse(peer.stdout.trim().split('\n').pop()).faults_per_step;
const theirs = fs.readFileSync(theirsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

// Non-tensor arguments ('' and 'Scalar') left out of the key: the two front ends pass defaults differently.
const key = (r) => `${r.name}(${r.dtypes.filter((d) => d !== '' && d !== 'Scalar').join(', ')})`;
const count = (rs, keep = () => true) => {
  const m = new Map();
  for (const r of rs) if (keep(r)) m.set(key(r), (m.get(key(r)) ?? 0) + 1);
  return m;
};
const a = count(ours), b = count(theirs);
const differing = [...new Set([...a.keys(), ...b.keys()])].sort()
  .filter((k) => (a.get(k) ?? 0) !== (b.get(k) ?? 0))
  .map((k) => ({ op: k, ours: a.get(k) ?? 0, pytorch: b.get(k) ?? 0 }));
// A cast is a copy_ between dtypes: autocast's (to_copy of weights, inputs, gradients) and any other.
const casts = (rs) => Object.fromEntries(count(rs, (r) => r.name === 'aten::copy_' && r.dtypes[0] !== r.dtypes[1]));
console.log(JSON.stringify({
  arch, precision, mode, batch: Number(batch), threads: Number(threads),
  ops: { ours: ours.length, pytorch: theirs.length },
  casts: { ours: casts(ours), pytorch: casts(theirs) },
  faults_per_step: { ours: oursFaults, pytorch: theirsFaults },
  differing,
  traces: { ours: oursFile, pytorch: theirsFile },
}, null, 1));
