/**
 * EfficientNet-B0 (src/models/efficientnet.ts) against torchvision's efficientnet_b0: seeded random
 * weights written by test/reference/efficientnet_reference.py load by torchvision's and timm's names
 * and give PyTorch's eval-mode logits and features; ours load back into torchvision; the ONNX export
 * runs the same on onnxruntime; a fine-tuning step trains every parameter; a block's clone is its
 * own; the CLI lists and inspects it. Inputs are 2 images at 64 px (the CPUs are shared).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { Tensor } from '../../src/engine/tensor';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { manualSeed, randn } from '../../src/engine/random';
import { tensor } from '../../src/engine/creation';
import { setNumThreads } from '../../src/engine/runtime';
import { isInputError } from '../../src/errors';
import { buildModel, modelSpec } from '../../src/models/registry';
import { EfficientNet, MBConv, timmEfficientNetName } from '../../src/models/efficientnet';
import { describeArchitecture, parseArchOptions, rebuildArchitecture } from '../../src/models/arch-options';
import { loadInto, loadSafetensors, saveSafetensors } from '../../src/io/safetensors';
import { exportOnnx } from '../../src/io/onnx/export';
import { applyMethod } from '../../src/methods/registry';
import { SGD } from '../../src/optim/sgd';
import { randomizeBatchNorm } from '../methods/helpers';
import { loadRun } from '../../src/train/load-run';
import { PYTHON, hasTorch, maxAbs, maxAbsDiff, tmpDir } from './helpers';

setNumThreads(1);
const TOL = 1e-4;
const REFERENCE = path.join(__dirname, '../../../test/reference/efficientnet_reference.py');
const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'bin', 'adafilter.js');
const noTorch = !hasTorch() && 'needs /usr/bin/python3 with torch and torchvision';

const dir = tmpDir('adafilter-efficientnet-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function reference(args: string[]): void {
  const r = spawnSync(PYTHON, [REFERENCE, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`efficientnet_reference.py ${args.join(' ')} failed: ${r.stderr || r.error}`);
}

let made = false;
/** The reference files (written once per run of this file). */
function fixtures(): string {
  if (!made) { reference(['fixtures', dir]); made = true; }
  return dir;
}

/** Max |ours − ref| and whether it is within TOL of the reference's scale (absolute below 1). */
function close(ours: Tensor, ref: Tensor, what: string): number {
  assert.deepEqual(ours.shape, ref.shape, what);
  const err = maxAbsDiff(ours, ref), scale = Math.max(1, maxAbs(ref));
  assert.ok(err <= TOL * scale, `${what}: differs from PyTorch by ${err} (scale ${scale})`);
  return err;
}

/** Loads FILE into a fresh efficientnet-b0 and compares with PyTorch's outputs on the same input. */
function checkAgainstTorch(file: string, label: string): void {
  const m = buildModel('efficientnet-b0', 10).eval();
  const io = loadSafetensors(path.join(fixtures(), 'efficientnet-b0.io.safetensors'));
  try {
    const r = loadInto(m, file);
    assert.deepEqual([r.missing.length, r.unexpected.length], [0, 0]);
    tidy(() => noGrad(() => {
      const x = io.get('input')!, logits = io.get('logits')!, feats = io.get('features')!;
      // Two images give different outputs (a network that forgot its input would compare trivially).
      assert.ok(maxAbsDiff(logits.select(0, 0), logits.select(0, 1)) > 1, 'reference logits depend on the input');
      const eL = close(m.forward(x), logits, `${label} logits`);
      const eF = close(m.features(x), feats, `${label} features`);
      console.log(`# ${label}: max |Δ| logits ${eL.toExponential(2)} (scale ${maxAbs(logits).toFixed(1)}), features ${eF.toExponential(2)} (scale ${maxAbs(feats).toFixed(1)})`);
    }));
    const tracked = [...m.stateDict()].find(([k]) => k.endsWith('num_batches_tracked'))!;
    assert.equal(tracked[1].item(), 7, 'BN statistics loaded');
  } finally {
    for (const t of io.values()) t.dispose();
    m.dispose();
  }
}

test('parameter count and names are torchvision efficientnet_b0\'s', () => {
  const m = buildModel('efficientnet-b0', 1000);
  try {
    // torchvision 0.14: sum(p.numel() for p in efficientnet_b0().parameters()) == 5288548.
    assert.equal(m.parameters().reduce((a, p) => a + p.numel, 0), 5_288_548);
    const names = [...m.stateDict().keys()];
    assert.equal(names.length, 360);
    for (const n of ['features.0.0.weight', 'features.1.0.block.0.0.weight', 'features.1.0.block.1.fc1.bias', 'features.1.0.block.2.1.running_var',
      'features.2.0.block.0.0.weight', 'features.2.1.block.2.fc2.weight', 'features.6.3.block.3.1.num_batches_tracked', 'features.8.1.weight', 'classifier.1.weight']) {
      assert.ok(names.includes(n), n);
    }
    assert.equal(m.featureDim, 1280);
    assert.equal(m.blocks().length, 16);
    assert.equal(m.convBns().length, 1 + 15 * 3 + 2 + 1);
  } finally {
    m.dispose();
  }
});

test('torchvision weights (safetensors) give PyTorch\'s eval logits and features', { skip: noTorch }, () => {
  checkAgainstTorch(path.join(fixtures(), 'efficientnet-b0.safetensors'), 'torchvision names');
});

test('timm-named weights load through the family\'s name map', { skip: noTorch }, () => {
  assert.equal(timmEfficientNetName('blocks.0.0.se.conv_reduce.weight'), 'features.1.0.block.1.fc1.weight');
  assert.equal(timmEfficientNetName('blocks.5.3.conv_pwl.weight'), 'features.6.3.block.3.0.weight');
  assert.equal(timmEfficientNetName('blocks.7.0.conv_pw.weight'), null);
  checkAgainstTorch(path.join(fixtures(), 'efficientnet-b0-timm.safetensors'), 'timm names');
});

test('our weights load into torchvision and give our logits', { skip: noTorch }, () => {
  manualSeed(3);
  const m = randomizeBatchNorm(buildModel('efficientnet-b0', 7)).eval();
  const x = randn([2, 3, 64, 64]);
  try {
    const ours = noGrad(() => m.forward(x));
    saveSafetensors(m, path.join(dir, 'ours.safetensors'));
    saveSafetensors(new Map([['input', x]]), path.join(dir, 'in.safetensors'));
    reference(['check', path.join(dir, 'ours.safetensors'), path.join(dir, 'in.safetensors'), path.join(dir, 'out.safetensors')]);
    const out = loadSafetensors(path.join(dir, 'out.safetensors'));
    const err = close(ours, out.get('logits')!, 'torchvision on our weights');
    console.log(`# export to torchvision: max |Δ| logits ${err.toExponential(2)}`);
    for (const t of [ours, ...out.values()]) t.dispose();
  } finally {
    x.dispose();
    m.dispose();
  }
});

test('stochastic depth drops whole residual branches per example in training, never in eval', () => {
  manualSeed(0);
  const b = new MBConv(16, 16, 6, 3, 1, 0.5);
  randomizeBatchNorm(b);
  const x = randn([64, 16, 4, 4]);
  tidy(() => noGrad(() => {
    b.eval();
    const branch = b.block.forward(x);
    assert.equal(maxAbsDiff(b.forward(x), x.add(branch)), 0);
    b.train();
    const branchTrain = b.block.forward(x); // BN in batch mode: the training branch
    const y = b.forward(x);
    let dropped = 0;
    for (let i = 0; i < 64; i++) {
      const d = y.select(0, i).sub(x.select(0, i));
      if (maxAbs(d) === 0) { dropped++; continue; }
      // Kept: the branch scaled by 1 / (1 − p), as torchvision's StochasticDepth('row').
      assert.ok(maxAbsDiff(d, branchTrain.select(0, i).mul(2)) < 1e-5, `example ${i}`);
    }
    assert.ok(dropped > 16 && dropped < 48, `${dropped} of 64 dropped at p = 0.5`);
  }));
  b.dispose();
  x.dispose();
});

test('a finetune step trains every parameter, the squeeze-excitation convs included', () => {
  manualSeed(0);
  const model = applyMethod('finetune', buildModel('efficientnet-b0', 10), 3);
  const x = randn([2, 3, 64, 64]);
  const y = tensor([0, 2], { dtype: 'int64' });
  try {
    model.train();
    const before = new Map(model.namedParameters().map(([k, p]) => [k, noGrad(() => p.clone())]));
    const opt = new SGD(model.paramGroups({ lr: 0.1 }), { lr: 0.1, momentum: 0.9 });
    const loss = tidy(() => {
      const l = model.loss(model.run(x), y);
      l.backward();
      return l.item();
    });
    assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
    opt.step();
    const still = [...before].filter(([k, t]) => maxAbsDiff(model.namedParameters().find(([n]) => n === k)![1], t) === 0).map(([k]) => k);
    assert.deepEqual(still, [], 'parameters that did not move');
    assert.ok([...before.keys()].some((k) => k.endsWith('features.3.1.block.2.fc1.weight')), 'the SE convs are parameters of the model');
    for (const t of before.values()) t.dispose();
  } finally {
    x.dispose();
    y.dispose();
    model.dispose();
  }
});

test('clone() of a block is an independent copy that computes the same', () => {
  manualSeed(0);
  const m = randomizeBatchNorm(buildModel('efficientnet-b0', 10)).eval();
  const block = m.blocks()[4].module as MBConv; // features.3.1: expand, 5×5 depthwise, SE, residual
  const copy = block.clone();
  const x = randn([2, 40, 8, 8]);
  try {
    assert.ok(copy instanceof MBConv && copy !== block);
    assert.equal(copy.training, false);
    tidy(() => noGrad(() => {
      assert.equal(maxAbsDiff(copy.forward(x), block.forward(x)), 0);
      const own = new Set(block.parameters());
      assert.ok(copy.parameters().every((p) => !own.has(p)), 'no shared parameters');
      for (const p of copy.parameters()) p.add_(1);
      assert.ok(maxAbsDiff(copy.forward(x), block.forward(x)) > 0.1);
    }));
  } finally {
    x.dispose();
    copy.dispose();
    m.dispose();
  }
});

test('ONNX export matches onnxruntime (plain backbone and an AdaFilter model)', async () => {
  manualSeed(0);
  const plain = randomizeBatchNorm(buildModel('efficientnet-b0', 10));
  const gated = applyMethod('adafilter', randomizeBatchNorm(buildModel('efficientnet-b0', 10)), 4);
  for (const [name, model] of [['efficientnet-b0', plain], ['adafilter-efficientnet-b0', gated]] as const) {
    const file = path.join(dir, `${name}.onnx`);
    exportOnnx(model, file, { inputShape: [3, 64, 64] });
    model.eval();
    const session = await ort.InferenceSession.create(file);
    const x = randn([2, 3, 64, 64]);
    try {
      const ours = tidy(() => noGrad(() => model.forward(x).toFloat32Array()));
      const out = await session.run({ input: new ort.Tensor('float32', x.toFloat32Array(), [2, 3, 64, 64]) });
      const theirs = out.logits.data as Float32Array;
      assert.equal(theirs.length, ours.length);
      let err = 0, scale = 1;
      for (let i = 0; i < ours.length; i++) { err = Math.max(err, Math.abs(ours[i] - theirs[i])); scale = Math.max(scale, Math.abs(ours[i])); }
      console.log(`# ${name}: max |Δ| vs onnxruntime ${err.toExponential(2)} (scale ${scale.toFixed(2)})`);
      assert.ok(err <= TOL * scale, `${name}: ${err}`);
    } finally {
      x.dispose();
      await session.release();
      model.dispose();
    }
  }
});

test('architecture options: B0 needs none, other scalings rebuild from them, bad ones are refused', () => {
  const b0 = buildModel('efficientnet-b0', 5);
  assert.deepEqual(describeArchitecture(b0, 'efficientnet-b0'), { arch: 'efficientnet-b0' });
  b0.dispose();
  const wide = new EfficientNet({ numClasses: 5, widthMult: 1.1, depthMult: 1.2 }); // torchvision's B2 scaling
  const d = describeArchitecture(wide, 'efficientnet-b0');
  assert.deepEqual(d.archOptions, { family: 'efficientnet', widthMult: 1.1, depthMult: 1.2, inChannels: 3, bnEps: 1e-5 });
  const again = rebuildArchitecture(d.arch, 5, d.archOptions);
  const shapes = (m: EfficientNet) => [...m.stateDict()].map(([k, t]) => `${k}:${t.shape.join('x')}`);
  assert.deepEqual(shapes(again as EfficientNet), shapes(wide));
  assert.equal(wide.featureDim, 1408); // torchvision efficientnet_b2's classifier input
  again.dispose();
  wide.dispose();
  assert.throws(() => parseArchOptions({ family: 'efficientnet', widthMult: -1, depthMult: 1, inChannels: 3, bnEps: 1e-5 }, 'run.json'),
    (e: unknown) => isInputError(e) && /run\.json: widthMult must be a number in \(0, 4\]/.test((e as Error).message));
});

test('models list and inspect show it; inspect reads torchvision weights as efficientnet-b0:FILE', { skip: noTorch }, () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  assert.equal(modelSpec('efficientnet-b0').family, 'efficientnet');
  const list = cli('models', 'list', '--json');
  assert.equal(list.status, 0, list.stderr);
  const arch = JSON.parse(list.stdout).architectures.find((a: { name: string }) => a.name === 'efficientnet-b0');
  assert.deepEqual([arch.family, arch.inputSize, arch.params], ['efficientnet', 224, 5_288_548]);
  const file = path.join(fixtures(), 'efficientnet-b0.safetensors');
  const ins = cli('models', 'inspect', `efficientnet-b0:${file}`, '--json');
  assert.equal(ins.status, 0, ins.stderr);
  const info = JSON.parse(ins.stdout);
  assert.equal(info.family, 'efficientnet');
  assert.equal(info.classifier.classes, 10);
  assert.equal(info.cutPoints.length, 16);
  assert.deepEqual(info.cutPoints[15], { name: 'features.7.0', stage: 6, channels: 320 });
  const dw = info.layers.find((l: { conv: string }) => l.conv === 'features.6.0.block.1.0');
  assert.deepEqual([dw.kind, dw.in, dw.kernel, dw.stride, dw.groups, dw.pads], ['depthwise', 672, 5, 2, 672, [2, 2, 2, 2]]);
});

test('a SpotTune run on efficientnet-b0:FILE trains one epoch, reloads and exports to ONNX that runs the same', { skip: noTorch }, async () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });
  const run = path.join(dir, 'run'), onnx = path.join(dir, 'run.onnx');
  const t = cli('train', '--backbone', `efficientnet-b0:${path.join(fixtures(), 'efficientnet-b0.safetensors')}`, '--method', 'spottune',
    '--data', 'quickdraw:300-302', '--shots', '4', '--epochs', '1', '--input-size', '64', '--threads', '1', '--workers', '0', '--out', run);
  assert.equal(t.status, 0, t.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).arch, 'efficientnet-b0');
  const e = cli('models', 'export', run, '--format', 'onnx', '--out', onnx);
  assert.equal(e.status, 0, e.stderr);
  const loaded = loadRun(run);
  const session = await ort.InferenceSession.create(onnx);
  manualSeed(3);
  const x = randn([2, 3, 64, 64]);
  try {
    const ours = tidy(() => noGrad(() => loaded.model.forward(x).toFloat32Array()));
    const out = await session.run({ input: new ort.Tensor('float32', x.toFloat32Array(), [2, 3, 64, 64]) });
    const theirs = out.logits.data as Float32Array;
    assert.equal(theirs.length, ours.length);
    let err = 0, scale = 1;
    for (let i = 0; i < ours.length; i++) { err = Math.max(err, Math.abs(ours[i] - theirs[i])); scale = Math.max(scale, Math.abs(ours[i])); }
    console.log(`# spottune run: max |Δ| vs onnxruntime ${err.toExponential(2)} (scale ${scale.toFixed(2)})`);
    assert.ok(err <= TOL * scale, `spottune run: ${err}`);
  } finally {
    x.dispose();
    await session.release();
    loaded.model.dispose();
  }
});
