/**
 * `adafilter select` (issue 19): cached tap features are the backbone's intermediate outputs bit
 * for bit (and what the final tap-probe model computes); the evolution keeps its best, is
 * deterministic by seed and finds the one informative tap of a synthetic task; on a tiny real task
 * the search (over two backbones) reads training and validation images only, ends at least as good as its initial
 * population's best, and leaves a run folder that eval reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { noGrad } from '../../src/engine/autograd';
import * as F from '../../src/nn/functional';
import { Rng } from '../../src/data/rng';
import { openDataset } from '../../src/data/registry';
import { createLoader, onSplitOpen, SplitOpen } from '../../src/data/loader';
import { evalTransform } from '../../src/data/transforms';
import { applyMethod } from '../../src/methods';
import { TapProbeModel } from '../../src/methods/tap-probe';
import { ResNet } from '../../src/models/resnet';
import { handOutputs, pooled } from './hand-forward';
import { inputTransform, openBackbone } from '../../src/train/backbones';
import { inputsOf } from '../../src/train/batch';
import { evaluate } from '../../src/train/evaluate-run';
import { readRunConfig } from '../../src/train/run-folder';
import { FeatureRows, Genome, TapSpace, assemble, evolve, genomeKey, mutate, scoreHead, select, tapFeatures } from '../../src/select';
import { SMALL, cli, tmpDir } from '../train/helpers';
import { fakePretrained } from '../methods/helpers';

setNumThreads(1);

const ALL_TAPS = 'stem:mean,stem:max,layer1.0:mean,layer1.0:max,layer2.1:mean,layer2.1:max,layer3.2:mean,layer3.2:max';


test('cached tap features are the backbone\'s stem and block outputs, mean- and max-pooled, bit for bit; a genome\'s assembled rows are its tap-probe model\'s features', async () => {
  const ds = await openDataset('quickdraw:300-302', { seed: 0, shots: 4 });
  manualSeed(0);
  const bb = openBackbone('default', 3);
  const transform = await inputTransform(bb.input, ds);
  const all = applyMethod('tap-probe', bb.model, 3, { taps: ALL_TAPS }) as TapProbeModel;
  all.eval();
  const cache = await tapFeatures(all, ds, 'train', transform, 0);
  const loader = await createLoader(ds, { split: 'train', batch: 100, transform: evalTransform(transform), workers: 0, shuffle: false });
  const batch = (await loader.epoch(0)[Symbol.asyncIterator]().next()).value!;
  await loader.close();
  const x = inputsOf(batch);
  const ref = noGrad(() => handOutputs(all.backbone as unknown as ResNet, x));
  for (const entry of ALL_TAPS.split(',')) {
    const [name, pool] = entry.split(':');
    const rows = cache.get(entry)!;
    assert.equal(rows.n, 12);
    assert.deepEqual(Array.from(rows.y), Array.from(batch.y));
    const want = noGrad(() => pooled(ref.get(name)!, pool).contiguous().data() as Float32Array);
    assert.equal(rows.dim * rows.n, want.length, entry);
    assert.ok(rows.x.every((v, i) => v === want[i]), `${entry} bit for bit`);
  }
  // The rows the search scores a genome on are the final model's features for it.
  const names = ['stem', 'layer1.0', 'layer1.1', 'layer1.2', 'layer2.0', 'layer2.1', 'layer2.2', 'layer3.0', 'layer3.1', 'layer3.2'];
  const space: TapSpace = { names, widths: names.map((n) => (n.startsWith('layer3') ? 64 : n.startsWith('layer2') ? 32 : 16)) };
  const g: Genome = { pools: names.map((n) => (n === 'stem' ? 'max' : n === 'layer2.1' ? 'mean' : n === 'layer3.2' ? 'max' : null)), hidden: 0, dropout: 0, lr: 0.1 };
  const rows = assemble(cache, g, space);
  const one = applyMethod('tap-probe', fakePretrained(0, 3), 3, { taps: 'stem:max,layer2.1:mean,layer3.2:max' }) as TapProbeModel;
  one.loadStateDict(new Map([...all.stateDict()].filter(([k]) => !k.startsWith('backbone.fc'))), false);
  one.eval();
  const f = noGrad(() => one.tapFeatures(x).contiguous().data() as Float32Array);
  assert.equal(rows.dim, 16 + 32 + 64);
  assert.ok(rows.x.every((v, i) => v === f[i]), 'assembled rows = tap-probe features');
  all.dispose(); one.dispose();
});

/** Eight taps of 6 features; only tap t5 carries the label (a class-dependent mean), the rest is noise. */
function syntheticTask(): { space: TapSpace; train: Map<string, FeatureRows>; val: Map<string, FeatureRows> } {
  const rng = new Rng(99);
  const names = ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7'], dim = 6, classes = 3;
  const split = (n: number) => {
    const y = Int32Array.from({ length: n }, (_, i) => i % classes);
    const m = new Map<string, FeatureRows>();
    for (const name of names) for (const pool of ['mean', 'max']) {
      const x = new Float32Array(n * dim).map(() => rng.float() * 2 - 1);
      if (name === 't5') for (let i = 0; i < n; i++) x[i * dim + y[i]] += 2;
      m.set(`${name}:${pool}`, { n, dim, x, y });
    }
    return m;
  };
  return { space: { names, widths: names.map(() => dim) }, train: split(30), val: split(30) };
}

test('evolution: the best fitness never decreases, the informative tap alone is selected, same seed → same candidates', async () => {
  const { space, train, val } = syntheticTask();
  const recipe = { classes: 3, epochs: 15, batch: 10, weightDecay: 5e-4, momentum: 0.9 };
  const run = (seed: number, generations: number) => evolve(space, (g, key) => scoreHead(assemble(train, g, space), assemble(val, g, space), g, { ...recipe, seed: key.length + seed }),
    { population: 8, generations, seed, penalty: 0.2 });
  for (const seed of [1, 3]) {
    const a = await run(seed, 20);
    assert.equal(a.generations.length, 21);
    for (let i = 1; i < a.generations.length; i++) assert.ok(a.generations[i].bestFitness >= a.generations[i - 1].bestFitness, `seed ${seed}, generation ${i}`);
    assert.equal(a.candidates.length, 8 * 21);
    assert.deepEqual(a.best.taps.map((t) => t.name), ['t5'], `seed ${seed} chose ${a.best.key}`);
    assert.equal(a.best.valAcc, 1);
    if (seed === 1) assert.ok(a.generations[0].bestFitness < a.best.fitness, 'the search improved on the initial population');
  }
  const [a, b, c] = [await run(2, 3), await run(2, 3), await run(4, 3)];
  assert.deepEqual(b.candidates.map((x) => [x.key, x.fitness, x.parent]), a.candidates.map((x) => [x.key, x.fitness, x.parent]), 'same seed, same candidates');
  assert.notDeepEqual(c.candidates.map((x) => x.key), a.candidates.map((x) => x.key), 'the seed matters');
  // Mutation always changes a genome and keeps a tap on.
  const mrng = new Rng(5);
  let g = a.best.genome;
  for (let i = 0; i < 200; i++) {
    const next = mutate(g, mrng, space);
    assert.notEqual(genomeKey(next, space), genomeKey(g, space));
    assert.ok(next.pools.some((p) => p !== null));
    g = next;
  }
});

function recordOpens(): { events: (SplitOpen & { phase: string })[]; phase: string; stop(): void } {
  const r = { events: [] as (SplitOpen & { phase: string })[], phase: 'search', stop: () => {} };
  r.stop = onSplitOpen((e) => r.events.push({ ...e, phase: r.phase }));
  return r;
}

test('select over two backbones on a tiny real task: the search reads only training and validation images (once per backbone), the test split once, last; it ends at least at its initial best, records every candidate, is deterministic, and leaves a run eval reads', async () => {
  const dir = tmpDir('select');
  const o = { data: 'quickdraw:300-302', backbone: ['default', 'doodles-resnet20'], shots: 6, population: 4, generations: 2, epochs: 8, batch: 8, threads: 1, workers: 0, seed: 3 };
  const rec = recordOpens();
  let r;
  try {
    // select reports the generations after the search, just before the final run.
    r = await select({ ...o, out: path.join(dir, 'a'), onGeneration: (g) => { if (g.generation === o.generations) rec.phase = 'final'; } });
  } finally {
    rec.stop();
  }
  const search = rec.events.filter((e) => e.phase === 'search');
  assert.deepEqual(search.map((e) => e.split).sort(), ['train', 'train', 'val', 'val'], 'the search opens the training and validation splits, once each per backbone');
  const tests = rec.events.filter((e) => e.split === 'test');
  assert.equal(tests.length, 1, 'the test split is opened once');
  assert.equal(tests[0].phase, 'final');
  assert.equal(rec.events[rec.events.length - 1].split, 'test', 'and last');

  const lines = fs.readFileSync(path.join(dir, 'a', 'candidates.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 4 * 3, 'every candidate of every generation');
  const initialBest = Math.max(...lines.filter((c) => c.generation === 0).map((c) => c.fitness));
  assert.ok(r.best.fitness >= initialBest, `best ${r.best.fitness} vs initial ${initialBest}`);
  assert.ok(r.best.valAcc >= lines.filter((c) => c.generation === 0).reduce((a, c) => (c.fitness > a.fitness ? c : a)).valAcc - 0.01 * 1, 'and on validation accuracy, up to the size penalty');
  const saved = JSON.parse(fs.readFileSync(path.join(dir, 'a', 'select.json'), 'utf8'));
  assert.equal(saved.generations.length, 3);
  assert.equal(saved.best.key, r.best.key);
  assert.ok(saved.seconds.perCandidate > 0);
  assert.equal(saved.settings.folds, 3, 'cross-validation is the default');
  const pooled = saved.settings.trainImages + saved.settings.valImages;
  assert.ok(lines.every((c) => Math.abs(c.valAcc * pooled - Math.round(c.valAcc * pooled)) < 1e-9), 'every pooled image is scored once: accuracies are k / (train + val)');
  assert.deepEqual(saved.settings.space.names.filter((n: string) => n.endsWith('@1')).length, 10, 'the second backbone\'s ten tap points are in the space');

  // The folder is a run of the chosen taps over the backbones they read; eval re-scores it on validation as the run did.
  const cfg = readRunConfig(path.join(dir, 'a'));
  assert.equal(cfg.method, 'tap-probe');
  const used = [...new Set(r.best.taps.map((t) => t.backbone))].sort();
  assert.deepEqual(r.backbones, used.map((k) => o.backbone[k]));
  assert.equal(cfg.backbone, r.backbones[0]);
  assert.equal(cfg.methodOptions.taps, r.best.taps.map((t) => `${t.name}${used.indexOf(t.backbone) ? `@${used.indexOf(t.backbone)}` : ''}:${t.pool}`).join(','));
  assert.equal(cfg.lr, r.best.lr);
  const ev = await evaluate(path.join(dir, 'a'), { split: 'val' });
  assert.equal(ev.acc, r.run.val.acc);

  const again = await select({ ...o, out: path.join(dir, 'b') });
  const strip = (f: string) => fs.readFileSync(f, 'utf8');
  assert.equal(strip(path.join(dir, 'b', 'candidates.jsonl')), strip(path.join(dir, 'a', 'candidates.jsonl')), 'same seed, same candidates');
  assert.equal(again.run.test.acc, r.run.test.acc);
  await assert.rejects(select({ ...o, out: path.join(dir, 'a') }), /already holds a selection/);

  // --folds 1: the validation split alone is scored (by heads trained on the training split), one backbone as a plain string.
  const held = await select({ ...o, backbone: 'default', folds: 1, population: 2, generations: 1, epochs: 2, out: path.join(dir, 'c') });
  const heldLines = fs.readFileSync(path.join(dir, 'c', 'candidates.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const v = JSON.parse(fs.readFileSync(path.join(dir, 'c', 'select.json'), 'utf8')).settings.valImages;
  assert.ok(heldLines.every((c) => Math.abs(c.valAcc * v - Math.round(c.valAcc * v)) < 1e-9), 'accuracies are k / val');
  assert.deepEqual(held.backbones, ['default']);
  assert.match(JSON.parse(fs.readFileSync(path.join(dir, 'c', 'select.json'), 'utf8')).note, /validation accuracy of a head trained on cached training-split features/);
});

test('CLI: a tap that does not exist (in the backbone, or no such backbone), an unknown or repeated backbone, backbones of different input sizes, bad folds, an unknown flag: one line, exit 2', () => {
  const dir = tmpDir('select-cli');
  const cases: [string[], RegExp][] = [
    [['train', ...SMALL, '--method', 'tap-probe', '--opt', 'taps=layer9.9:mean', '--steps', '1', '--out', path.join(dir, 'x')], /tap 'layer9\.9' does not exist in this backbone; taps: stem, layer1\.0, .*layer3\.2/],
    [['train', ...SMALL, '--method', 'tap-probe', '--opt', 'taps=stem:median', '--steps', '1', '--out', path.join(dir, 'x')], /pool must be mean or max/],
    [['train', ...SMALL, '--method', 'tap-probe', '--opt', 'taps=layer1.0@1:mean', '--steps', '1', '--out', path.join(dir, 'x')], /tap 'layer1\.0@1': there is no backbone 1/],
    [['select', '--data', 'quickdraw:300-302', '--backbone', 'default', '--backbone', 'nope', '--out', path.join(dir, 'y')], /unknown backbone 'nope'/],
    [['select', '--data', 'quickdraw:300-302', '--backbone', 'default', '--backbone', 'default', '--out', path.join(dir, 'y')], /--backbone 'default' is given twice/],
    [['select', '--data', 'quickdraw:300-302', '--shots', '2', '--backbone', 'default', '--backbone', 'mobilenetv2-0.35', '--out', path.join(dir, 'y')], /must share input size and channels/],
    [['select', '--data', 'quickdraw:300-302', '--folds', '0', '--out', path.join(dir, 'y')], /--folds: expected an integer >= 1/],
    [['select', '--data', 'quickdraw:300-302', '--shots', '2', '--backbone', 'default', '--backbone', 'resnet20', '--out', path.join(dir, 'y')], /backbone 'resnet20' has random weights; a selection over several backbones takes pretrained ones/],
    [['select', '--data', 'quickdraw:300-302', '--shots', '2', '--folds', '50', '--out', path.join(dir, 'y')], /--folds 50 needs at least 50 images of every class in the training and validation splits; '.*' has \d+/],
    [['select', '--data', 'quickdraw:300-302', '--taps', 'x', '--out', path.join(dir, 'y')], /select: .*--taps/],
    [['select', '--data', 'quickdraw:300-302', '--population', '1', '--out', path.join(dir, 'y')], /--population: expected an integer >= 2/],
    [['select', '--data', 'quickdraw:300-302', '--shots', '6', '--val-fraction', '1.5', '--out', path.join(dir, 'y')], /val fraction must be in \[0, 1\)/],
  ];
  for (const [args, re] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'x')) && !fs.existsSync(path.join(dir, 'y')));
});

test('tap-probe trains only its head; the backbone stays in eval mode', () => {
  manualSeed(1);
  const m = applyMethod('tap-probe', fakePretrained(1), 4, { taps: 'stem:max,layer3.2:mean', hidden: 8, dropout: 0.25 }) as TapProbeModel;
  m.train();
  assert.equal(m.backbone.training, false);
  const trainable = new Set(m.trainableParameters().map(([p]) => p));
  assert.deepEqual(m.namedParameters().filter(([, p]) => trainable.has(p)).map(([k]) => k).sort(), ['backbone.fc.bias', 'backbone.fc.weight', 'hiddenLayer.bias', 'hiddenLayer.weight']);
  const logits = m.forward(randn([2, 3, 32, 32]));
  assert.deepEqual(logits.shape, [2, 4]);
  assert.equal(m.featureWidth, 16 + 64);
  m.dispose();
});
