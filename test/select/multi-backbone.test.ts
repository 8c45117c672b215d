/**
 * `adafilter select` over several backbones with cross-validated fitness (issue 19): the folds are
 * stratified, disjoint, cover the pool and follow the seed; a second backbone's cached features are
 * its intermediate outputs on its own preprocessing bit for bit; on a synthetic two-backbone task
 * the one informative (backbone, tap) is selected; a tap-probe run over two backbones starts from
 * both pretrained files, is read back by eval and predict, agrees with the search's cache, and
 * refuses ONNX export in one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { noGrad } from '../../src/engine/autograd';
import * as F from '../../src/nn/functional';
import { Rng } from '../../src/data/rng';
import { openDataset } from '../../src/data/registry';
import { createLoader } from '../../src/data/loader';
import { evalTransform } from '../../src/data/transforms';
import { applyMethod } from '../../src/methods';
import { TapProbeModel } from '../../src/methods/tap-probe';
import { ResNet } from '../../src/models/resnet';
import { handOutputs, pooled } from './hand-forward';
import { inputTransform, openBackbone } from '../../src/train/backbones';
import { inputsOf } from '../../src/train/batch';
import { fineTune } from '../../src/train/trainer';
import { evaluate } from '../../src/train/evaluate-run';
import { predict } from '../../src/train/predict';
import { loadRun } from '../../src/train/load-run';
import { readRunConfig } from '../../src/train/run-folder';
import { exportOnnx } from '../../src/io/onnx/export';
import { InputError } from '../../src/errors';
import { FeatureRows, TapSpace, assemble, cacheBackbone, evolve, finalModel, scoreFolds, stratifiedFolds } from '../../src/select';
import { tmpDir } from '../train/helpers';

setNumThreads(1);

test('cross-validation folds are stratified by class, disjoint, cover the pool, and follow the seed', () => {
  // Uneven classes: 7, 5 and 9 rows, interleaved.
  const y = Int32Array.from([...Array(7).fill(0), ...Array(5).fill(1), ...Array(9).fill(2)]);
  new Rng(3).shuffle(Array.from(y)).forEach((c, i) => (y[i] = c));
  for (const folds of [2, 3, 5]) {
    const f = stratifiedFolds(y, folds, 4);
    assert.equal(f.length, y.length, 'one fold per row: disjoint and covering');
    assert.ok(f.every((k) => Number.isInteger(k) && k >= 0 && k < folds));
    for (const c of [0, 1, 2]) {
      const n = y.filter((v) => v === c).length;
      const per = Array.from({ length: folds }, (_, k) => f.filter((kk, i) => kk === k && y[i] === c).length);
      assert.ok(per.every((m) => m === Math.floor(n / folds) || m === Math.ceil(n / folds)), `class ${c}, ${folds} folds: ${per}`);
    }
    const sizes = Array.from({ length: folds }, (_, k) => f.filter((kk) => kk === k).length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `fold sizes ${sizes}`);
    assert.deepEqual(Array.from(stratifiedFolds(y, folds, 4)), Array.from(f), 'same seed, same folds');
  }
  assert.notDeepEqual(Array.from(stratifiedFolds(y, 3, 5)), Array.from(stratifiedFolds(y, 3, 4)), 'the seed matters');
});


async function firstBatch(ds: Awaited<ReturnType<typeof openDataset>>, transform: Awaited<ReturnType<typeof inputTransform>>) {
  const loader = await createLoader(ds, { split: 'train', batch: 100, transform: evalTransform(transform), workers: 0, shuffle: false });
  const batch = (await loader.epoch(0)[Symbol.asyncIterator]().next()).value!;
  await loader.close();
  return batch;
}

test('a second backbone\'s cached features are its stem and block outputs on its own preprocessing, bit for bit', async () => {
  const ds = await openDataset('quickdraw:300-302', { seed: 0, shots: 4 });
  manualSeed(0);
  const choice = openBackbone('doodles-resnet20', 3);
  const transform = await inputTransform(choice.input, ds);
  const other = openBackbone('default', 3);
  assert.notEqual(transform.mean[0], (await inputTransform(other.input, ds)).mean[0], 'the two shipped backbones normalise differently, so "its own" is tested');
  other.model.dispose();
  // The reference: a separately opened copy of the same backbone on a batch prepared its own way.
  const ref = openBackbone('doodles-resnet20', 3);
  ref.model.eval();
  const c = await cacheBackbone({ spec: 'doodles-resnet20', choice, transform }, 1, ds, 0);
  const batch = await firstBatch(ds, transform);
  const outs = noGrad(() => handOutputs(ref.model as unknown as ResNet, inputsOf(batch)));
  assert.deepEqual(c.names.slice(0, 2), ['stem@1', 'layer1.0@1']);
  assert.equal(c.names.length, 10);
  for (const id of c.names) for (const pool of ['mean', 'max']) {
    const rows = c.train.get(`${id}:${pool}`)!;
    assert.equal(rows.n, 12);
    assert.deepEqual(Array.from(rows.y), Array.from(batch.y));
    const want = noGrad(() => pooled(outs.get(id.replace('@1', ''))!, pool).contiguous().data() as Float32Array);
    assert.equal(rows.x.length, want.length);
    assert.ok(rows.x.every((v, i) => v === want[i]), `${id}:${pool} bit for bit`);
  }
  assert.equal(c.val.get('layer3.2@1:mean')!.n, ds.splits.val!.length);
  ref.model.dispose();
});

/** Two backbones of four taps (6 features each); only tap t2 of backbone 1 carries the label, the rest is noise. */
function twoBackboneTask(): { space: TapSpace; pool: Map<string, FeatureRows> } {
  const rng = new Rng(41);
  const names = ['t0', 't1', 't2', 't3', 't0@1', 't1@1', 't2@1', 't3@1'], dim = 6, classes = 3, n = 45;
  const y = Int32Array.from({ length: n }, (_, i) => i % classes);
  const pool = new Map<string, FeatureRows>();
  for (const name of names) for (const p of ['mean', 'max']) {
    const x = new Float32Array(n * dim).map(() => rng.float() * 2 - 1);
    if (name === 't2@1') for (let i = 0; i < n; i++) x[i * dim + y[i]] += 2;
    pool.set(`${name}:${p}`, { n, dim, x, y });
  }
  return { space: { names, widths: names.map(() => dim) }, pool };
}

test('two backbones, one informative tap on the second: cross-validated evolution selects that (backbone, tap) alone, deterministically', async () => {
  const { space, pool } = twoBackboneTask();
  const folds = 3, y = pool.get('t0:mean')!.y;
  const recipe = { classes: 3, epochs: 15, batch: 10, weightDecay: 5e-4, momentum: 0.9 };
  const run = (seed: number) => {
    const foldOf = stratifiedFolds(y, folds, seed);
    return evolve(space, (g, key) => scoreFolds(assemble(pool, g, space), foldOf, folds, g, { ...recipe, seed: key.length + seed }),
      { population: 8, generations: 15, seed, penalty: 0.2 });
  };
  const a = await run(1);
  assert.deepEqual(a.best.taps.map((t) => [t.backbone, t.name]), [[1, 't2']], `chose ${a.best.key}`);
  assert.ok(a.best.valAcc >= 44 / 45, `cross-validated accuracy ${a.best.valAcc}`);
  assert.deepEqual(a.candidates[0].taps.map((t) => [t.backbone, t.name]), [[0, 't3']], 'the first individual is the first backbone\'s last tap');
  assert.ok(a.candidates[0].fitness < a.best.fitness, 'the search improved on it');
  for (let i = 1; i < a.generations.length; i++) assert.ok(a.generations[i].bestFitness >= a.generations[i - 1].bestFitness);
  const b = await run(1);
  assert.deepEqual(b.candidates.map((c) => [c.key, c.fitness]), a.candidates.map((c) => [c.key, c.fitness]), 'same seed, same result');
  // The final model reads the chosen backbone alone: an ordinary one-backbone run of the second spec.
  const fm = finalModel(a.best.taps, [{ spec: 'A', arch: 'resnet20', stats: { mean: [0], std: [1] } }, { spec: 'B', arch: 'resnet20', stats: { mean: [0.5], std: [2] } }]);
  assert.equal(fm.backbone, 'B');
  assert.deepEqual(fm.methodOptions, { taps: `t2:${a.best.taps[0].pool}` });
});

async function pngs(dir: string, n: number): Promise<string[]> {
  const ds = await openDataset('quickdraw:300-302', { seed: 0 });
  const s = ds.storage;
  if (s.kind !== 'memory') throw new Error('quickdraw is in memory');
  const px = s.height * s.width * s.channels;
  return Promise.all(ds.splits.test!.slice(0, n).map(async (it, i) => {
    const f = path.join(dir, `img${i}.png`);
    await sharp(Buffer.from(new Uint8Array(s.pixels, it.index * px, px)), { raw: { width: s.width, height: s.height, channels: s.channels } }).png().toFile(f);
    return f;
  }));
}

test('a tap-probe run over two backbones: both start pretrained, eval and predict read it back, its features are the search\'s cache (within the renormalisation\'s rounding), ONNX export is refused in one line', async () => {
  const dir = tmpDir('select-two');
  const data = { data: 'quickdraw:300-302', shots: 6, seed: 2 };
  const ds = await openDataset(data.data, { seed: data.seed, shots: data.shots });
  manualSeed(0);
  const opened = await Promise.all(['default', 'doodles-resnet20'].map(async (spec) => {
    const choice = openBackbone(spec, 3);
    return { spec, choice, transform: await inputTransform(choice.input, ds) };
  }));
  // In the search's order (backbone by backbone, forward order), as genomeTaps gives them.
  const fm = finalModel([{ backbone: 0, name: 'layer3.2', pool: 'mean' }, { backbone: 1, name: 'stem', pool: 'mean' }, { backbone: 1, name: 'layer2.1', pool: 'max' }],
    opened.map((b) => ({ spec: b.spec, arch: b.choice.arch, stats: { mean: b.transform.mean, std: b.transform.std } })));
  assert.equal(fm.backbone, 'default');
  assert.equal(fm.methodOptions.taps, 'layer3.2:mean,stem@1:mean,layer2.1@1:max');
  const run = await fineTune({ ...data, backbone: fm.backbone, method: 'tap-probe', methodOptions: { ...fm.methodOptions, hidden: 8 }, lr: 0.05, epochs: 3, batch: 8,
    augment: false, threads: 1, workers: 0, out: path.join(dir, 'run') });
  const cfg = readRunConfig(run.dir);
  assert.deepEqual((cfg.methodOptions.backbones as { spec: string }[]).map((b) => b.spec), ['doodles-resnet20']);

  const loaded = loadRun(run.dir);
  const m = loaded.model as TapProbeModel;
  try {
    // The second backbone trained frozen from its pretrained file (read when the run started).
    const pre = openBackbone('doodles-resnet20', 1);
    const want = pre.model.stateDict(), got = m.extraBackbones[0].stateDict();
    const same = (a: Tensor, b: Tensor) => { const x = a.toFloat32Array(), y = b.toFloat32Array(); return x.length === y.length && x.every((v, i) => v === y[i]); };
    for (const [k, t] of want) if (!k.startsWith('fc.') && t.dtype === 'float32') assert.ok(same(got.get(k)!, t), `extra backbone ${k} is the pretrained file's`);
    pre.model.dispose();
    assert.ok(same(m.backbone.stateDict().get('conv1.weight')!, opened[0].choice.model.stateDict().get('conv1.weight')!), 'backbone 0 is default');

    // The run's features vs the search's cache of each backbone on its own preprocessing.
    const c0 = await cacheBackbone(opened[0], 0, ds, 0), c1 = await cacheBackbone(opened[1], 1, ds, 0);
    const batch = await firstBatch(ds, opened[0].transform); // the run's preprocessing: backbone 0's
    const f = noGrad(() => m.tapFeatures(inputsOf(batch)).contiguous().data() as Float32Array);
    const cache = new Map([...c0.train, ...c1.train]);
    const rows = assemble(cache, { pools: [...c0.names, ...c1.names].map((n) => (n === 'layer3.2' ? 'mean' : n === 'layer2.1@1' ? 'max' : n === 'stem@1' ? 'mean' : null)), hidden: 0, dropout: 0, lr: 0 },
      { names: [...c0.names, ...c1.names], widths: [...c0.widths, ...c1.widths] });
    assert.equal(rows.dim, 64 + 32 + 16);
    assert.equal(f.length, rows.x.length);
    for (let r = 0; r < rows.n; r++) {
      for (let j = 0; j < 64; j++) assert.equal(f[r * rows.dim + j], rows.x[r * rows.dim + j], 'backbone 0: its own preprocessing exactly');
    }
    const worst = rows.x.reduce((w, v, i) => Math.max(w, Math.abs(v - f[i])), 0);
    assert.ok(worst <= 1e-4, `backbone 1 through the renormalisation: max abs difference ${worst}`);
    // Its input as the model makes it vs as its own loader makes it.
    const own = await firstBatch(ds, opened[1].transform);
    const mine = noGrad(() => m.backboneInput(inputsOf(batch), 1).contiguous().data() as Float32Array), theirs = inputsOf(own).data() as Float32Array;
    assert.ok(mine.every((v, i) => Math.abs(v - theirs[i]) <= 1e-6 * Math.max(1, Math.abs(theirs[i]))), 'renormalised input = its own preprocessing up to float32 rounding');

    assert.throws(() => exportOnnx(m, path.join(dir, 'm.onnx'), { inputShape: [3, 32, 32] }),
      (e: Error) => e instanceof InputError && /tap-probe model over 2 backbones is not supported/.test(e.message) && !e.message.includes('\n'));
  } finally {
    m.dispose();
  }
  const ev = await evaluate(run.dir, { split: 'val' });
  assert.equal(ev.acc, run.val.acc, 'eval re-scores the run as it validated');
  const preds = await predict(run.dir, await pngs(dir, 2), { topk: 2 });
  assert.equal(preds.length, 2);
  assert.ok(preds.every((p) => p.top.length === 2 && ds.classes.includes(p.top[0].class)));
  assert.ok(fs.existsSync(path.join(run.dir, 'result.json')));
});

test('tap-probe: a tap of a backbone the model does not have, or not in that backbone, is one InputError line', () => {
  manualSeed(0);
  const extra = [{ spec: 'doodles-resnet20', arch: 'resnet20', normalize: { mean: [0.1, 0.1, 0.1], std: [0.3, 0.3, 0.3] } }];
  const stats = { mean: [0.2, 0.2, 0.2], std: [0.3, 0.3, 0.3] };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ taps: 'layer1.0@1:mean' }, /tap 'layer1\.0@1': there is no backbone 1 \(this model reads one backbone\)/],
    [{ taps: 'layer9.9@1:mean', backbones: extra, inputStats: stats }, /tap 'layer9\.9@1' does not exist in backbone 1 \(doodles-resnet20\); taps: stem, layer1\.0/],
    [{ taps: 'stem@x:mean' }, /the backbone after @ must be a number/],
    [{ taps: 'stem@1:mean', backbones: extra }, /inputStats .* is required/],
    [{ taps: 'stem', backbones: 'default' }, /backbones must be a list/],
  ];
  for (const [opts, re] of cases) {
    const bb = openBackbone('default', 3);
    assert.throws(() => applyMethod('tap-probe', bb.model, 3, opts), (e: Error) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n'), JSON.stringify(opts));
    bb.model.dispose();
  }
});
