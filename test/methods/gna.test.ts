/**
 * gna (grouped-neuron fine-tuning): k-means, the grouped update under momentum and weight decay,
 * ratio 1 = finetune, options, and calibration in a run (once, kept on resume).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { fromTyped } from '../../src/engine/creation';
import { noGrad } from '../../src/engine/autograd';
import { setNumThreads } from '../../src/engine/runtime';
import { SGD } from '../../src/optim/sgd';
import { applyMethod } from '../../src/methods';
import { GnaModel, kmeans } from '../../src/methods/gna';
import { Rng } from '../../src/data/rng';
import type { Batch } from '../../src/data/loader';
import { fineTune } from '../../src/train/trainer';
import { loadRun } from '../../src/train/load-run';
import { InputError } from '../../src/errors';
import { SMALL_API, tmpDir } from '../train/helpers';
import { fakePretrained, step } from './helpers';

setNumThreads(1);

const gnaOf = (o: Record<string, unknown>, seed: number) => applyMethod('gna', fakePretrained(seed), 5, o) as GnaModel;

/** Loader-style batches of x (what calibrate reads). */
async function* batches(x: Tensor, size: number): AsyncGenerator<Batch> {
  const data = x.contiguous().data() as Float32Array, [n, c, h, w] = x.shape;
  for (let i = 0; i < n; i += size) {
    const k = Math.min(size, n - i);
    yield { x: data.slice(i * c * h * w, (i + k) * c * h * w), y: new Int32Array(k), shape: [k, c, h, w] };
  }
}

/** Rows of a [C, ...] weight as arrays. */
function rows(t: Tensor): number[][] {
  const a = t.toArray() as number[], c = t.shape[0], k = a.length / c;
  return Array.from({ length: c }, (_, i) => a.slice(i * k, (i + 1) * k));
}

const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('k-means++ recovers a planted two-cluster fixture, is deterministic per seed, and k ≥ points is the identity', () => {
  const rng = new Rng(7);
  const planted = Array.from({ length: 40 }, () => rng.int(2));
  const pts = new Float64Array(40 * 8);
  planted.forEach((p, i) => { for (let j = 0; j < 8; j++) pts[i * 8 + j] = (j === 0 ? (p ? 2 : -2) : 0) + 0.3 * (rng.float() * 2 - 1); });
  const x = fromTyped(pts, 'float64', [40, 8]);
  for (const seed of [0, 1, 2]) {
    const g = kmeans(x, 2, seed);
    for (let i = 0; i < 40; i++) for (let j = 0; j < 40; j++) assert.equal(g[i] === g[j], planted[i] === planted[j], `seed ${seed}: points ${i}, ${j}`);
    assert.equal(g[0], 0, 'labels numbered by first appearance');
  }
  manualSeed(8);
  const noise = randn([50, 6], { dtype: 'float64' });
  const a = kmeans(noise, 7, 3), b = kmeans(noise, 7, 3);
  assert.deepEqual(a, b, 'same seed, same clusters');
  assert.deepEqual([...new Set(a)].sort((p, q) => p - q), [0, 1, 2, 3, 4, 5, 6], 'k non-empty clusters');
  const bySeed = [0, 1, 2, 4, 5].map((s) => kmeans(noise, 7, s).join());
  assert.ok(new Set([...bySeed, a.join()]).size > 1, 'the seed matters on unstructured points');
  assert.deepEqual(kmeans(noise.narrow(0, 0, 5), 5, 0), Int32Array.from([0, 1, 2, 3, 4]));
});

test('ratio 1 is finetune bit for bit after SGD steps with momentum and weight decay', async () => {
  manualSeed(30);
  const x = randn([6, 3, 16, 16]), y = randint(0, 5, [6]), calib = randn([12, 3, 16, 16]);
  const ft = applyMethod('finetune', fakePretrained(3), 5);
  const g = gnaOf({ ratio: 1 }, 3);
  const half = gnaOf({ ratio: 0.5 }, 3);
  await g.calibrate(batches(calib, 5));
  await half.calibrate(batches(calib, 5));
  assert.ok(g.grouping().every((l) => new Set(l.groups).size === l.channels), 'every filter its own group');
  const o = { lr: 0.05, weightDecay: 5e-3 };
  const opts = [ft, g, half].map((m) => new SGD(m.paramGroups(o), { lr: 0.05, momentum: 0.9 }));
  for (const m of [ft, g, half]) m.train();
  for (let k = 0; k < 4; k++) [ft, g, half].forEach((m, i) => step(m, opts[i], x, y));
  const ref = ft.backbone.stateDict();
  let compared = 0;
  for (const [k, t] of g.backbone.stateDict()) {
    if (k.endsWith('.group')) continue;
    assert.deepEqual(t.toArray(), ref.get(k)!.toArray(), `${k} equals finetune's`);
    compared++;
  }
  assert.equal(compared, ref.size);
  const moved = half.backbone.stateDict().get('layer2.0.conv1.weight')!.toArray();
  assert.notDeepEqual(moved, ref.get('layer2.0.conv1.weight')!.toArray(), 'ratio 0.5 trains differently (the comparison can fail)');
  for (const m of [ft, g, half]) m.dispose();
  for (const opt of opts) opt.dispose();
});

test('after steps with momentum and weight decay, W − W0 is the same for every filter of a group', async () => {
  manualSeed(31);
  const x = randn([6, 3, 16, 16]), y = randint(0, 5, [6]), calib = randn([24, 3, 16, 16]);
  const g = gnaOf({ ratio: 0.5 }, 4);
  const ft = applyMethod('finetune', fakePretrained(4), 5);
  await g.calibrate(batches(calib, 8));
  const grouping = g.grouping();
  assert.equal(grouping.length, 19 + 2, 'stem, 18 block convs and 2 shortcuts of resnet20');
  for (const l of grouping) assert.equal(new Set(l.groups).size, Math.ceil(l.channels / 2), `${l.name}: ⌈C/2⌉ groups`);
  const w0 = new Map(g.layers.map((l) => [l.name, rows(l.conv.weight)]));
  const o = { lr: 0.05, weightDecay: 5e-3 };
  const optG = new SGD(g.paramGroups(o), { lr: 0.05, momentum: 0.9 }), optF = new SGD(ft.paramGroups(o), { lr: 0.05, momentum: 0.9 });
  g.train(); ft.train();
  for (let k = 0; k < 5; k++) { step(g, optG, x, y); step(ft, optF, x, y); }
  const ftWeights = ft.backbone.stateDict();
  let tied = 0, ftSpread = 0;
  for (const l of g.layers) {
    const before = w0.get(l.name)!, now = rows(l.conv.weight), ftNow = rows(ftWeights.get(`${l.name}.weight`)!);
    const delta = now.map((r, c) => r.map((v, j) => v - before[c][j]));
    const ftDelta = ftNow.map((r, c) => r.map((v, j) => v - before[c][j]));
    const ids = l.conv.groupIds();
    for (let a = 0; a < ids.length; a++) {
      for (let b = a + 1; b < ids.length; b++) {
        if (ids[a] !== ids[b]) continue;
        // float32 rounding of W itself is the only difference left (≈ 1e-7 per step).
        assert.ok(maxDiff(delta[a], delta[b]) < 2e-6, `${l.name}: filters ${a} and ${b} (group ${ids[a]}) moved apart by ${maxDiff(delta[a], delta[b])}`);
        ftSpread = Math.max(ftSpread, maxDiff(ftDelta[a], ftDelta[b]));
        tied++;
      }
    }
    assert.ok(Math.max(...delta.map((r) => Math.max(...r.map(Math.abs)))) > 1e-4, `${l.name} moved`);
  }
  assert.ok(tied > 100, `${tied} pairs checked`);
  assert.ok(ftSpread > 1e-3, `finetune's filters of the same groups move apart (${ftSpread}): the check can fail`);
  g.dispose(); ft.dispose(); optG.dispose(); optF.dispose();
});

test('options: unknown names and bad values are InputErrors; training before calibration is refused; the grouping is in the state dict', async () => {
  for (const o of [{ nosuch: 1 }, { ratio: 0 }, { ratio: 1.5 }, { ratio: 'half' }, { layers: 'some' }, { images: 1 }, { seed: -1 }]) {
    assert.throws(() => gnaOf(o, 5), InputError, JSON.stringify(o));
  }
  manualSeed(32);
  const x = randn([4, 3, 16, 16]), y = randint(0, 5, [4]);
  const g = gnaOf({ ratio: 0.25, layers: 'last-3' }, 5);
  assert.equal(g.layers.length, 3);
  assert.deepEqual(g.layers.map((l) => l.name), ['layer3.1.conv2', 'layer3.2.conv1', 'layer3.2.conv2']);
  const opt = new SGD(g.paramGroups({ lr: 0.1 }), { lr: 0.1, momentum: 0.9 });
  g.train();
  assert.throws(() => step(g, opt, x, y), /not calibrated/);
  await g.calibrate(batches(randn([16, 3, 16, 16]), 16));
  assert.ok(g.calibrated);
  const copy = gnaOf({ ratio: 0.25, layers: 'last-3' }, 6);
  assert.equal(copy.calibrated, false);
  copy.loadStateDict(g.stateDict());
  assert.ok(copy.calibrated, 'loading a state dict restores the grouping');
  assert.deepEqual(copy.grouping(), g.grouping());
  for (const l of g.grouping()) assert.equal(new Set(l.groups).size, 16);
  g.dispose(); copy.dispose(); opt.dispose();
});

test('a gna run calibrates once; an interrupted run resumed from its checkpoint keeps the grouping and ends like an uninterrupted one', async () => {
  const base = tmpDir('gna');
  const calls: string[] = [];
  const orig = GnaModel.prototype.calibrate;
  GnaModel.prototype.calibrate = function (this: GnaModel, b: AsyncIterable<Batch>) { calls.push('calibrate'); return orig.call(this, b); };
  try {
    const o = { ...SMALL_API, method: 'gna', methodOptions: { ratio: 0.5, images: 12 }, epochs: 2 };
    const whole = path.join(base, 'whole'), stopped = path.join(base, 'stopped');
    await fineTune({ ...o, out: whole });
    assert.deepEqual(calls, ['calibrate']);
    const ac = new AbortController();
    await assert.rejects(fineTune({ ...o, out: stopped, signal: ac.signal, onEvent: (e) => { if (e.type === 'epoch') ac.abort(); } }), /interrupted/);
    assert.deepEqual(calls, ['calibrate', 'calibrate']);
    await fineTune({ ...o, out: stopped, resume: true });
    assert.deepEqual(calls, ['calibrate', 'calibrate'], 'not recalibrated on resume');
    const w = (d: string) => fs.readFileSync(path.join(d, 'model.safetensors'));
    assert.ok(w(whole).equals(w(stopped)), 'same best weights as the uninterrupted run');
    const run = loadRun(whole);
    const m = run.model as GnaModel;
    assert.ok(m.calibrated, 'the grouping is saved with the weights');
    for (const l of m.grouping()) assert.equal(new Set(l.groups).size, Math.ceil(l.channels / 2), l.name);
    m.dispose();
  } finally {
    GnaModel.prototype.calibrate = orig;
  }
});

test('calibration groups filters whose responses are correlated across images (the stem with planted pairs)', async () => {
  manualSeed(33);
  const backbone = fakePretrained(7);
  // Filter c + 8 of the stem is 2 × filter c: their responses differ by a scale, so they correlate perfectly.
  const w = (backbone as unknown as { conv1: { weight: Tensor } }).conv1.weight;
  const r = rows(w);
  const planted = r.map((row, c) => (c < 8 ? row : r[c - 8].map((v) => 2 * v)));
  noGrad(() => w.copy_(fromTyped(Float32Array.from(planted.flat()), 'float32', w.shape)));
  const g = applyMethod('gna', backbone, 5, { ratio: 0.5, layers: 'all' }) as GnaModel;
  await g.calibrate(batches(randn([32, 3, 16, 16]), 10));
  const stem = g.grouping().find((l) => l.name === 'conv1')!;
  for (let c = 0; c < 8; c++) assert.equal(stem.groups[c], stem.groups[c + 8], `filters ${c} and ${c + 8} share a group`);
  assert.equal(new Set(stem.groups).size, 8);
  g.dispose();
});

test('a gna run with ratio 1 ends with finetune\'s weights: calibration leaves the model as it found it', async () => {
  const base = tmpDir('gna-ft');
  const o = { ...SMALL_API, epochs: 1 };
  await fineTune({ ...o, method: 'finetune', out: path.join(base, 'ft') });
  await fineTune({ ...o, method: 'gna', methodOptions: { ratio: 1, images: 12 }, out: path.join(base, 'gna') });
  const ft = loadRun(path.join(base, 'ft')).model, g = loadRun(path.join(base, 'gna')).model;
  const ref = ft.stateDict();
  let compared = 0;
  for (const [k, t] of g.stateDict()) {
    if (k.endsWith('.group')) continue;
    assert.deepEqual(t.toArray(), ref.get(k)!.toArray(), k);
    compared++;
  }
  assert.equal(compared, ref.size, 'every finetune tensor compared (BN running statistics included)');
  ft.dispose(); g.dispose();
});
