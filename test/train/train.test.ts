import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { fineTune, evaluate, predict, loadRun } from '../../src';
import { readLog, readRunConfig } from '../../src/train/run-folder';
import { openDataset } from '../../src/data/registry';
import { SMALL_API, tmpDir } from './helpers';

test('fineTune writes a complete run folder; evaluate re-derives the same test split and score', async () => {
  const dir = path.join(tmpDir('api'), 'run');
  const r = await fineTune({ ...SMALL_API, method: 'adafilter', epochs: 2, out: dir });
  for (const f of ['run.json', 'log.jsonl', 'checkpoint.safetensors', 'model.safetensors', 'result.json']) {
    assert.ok(fs.existsSync(path.join(dir, f)), f);
  }
  const cfg = readRunConfig(dir);
  assert.deepEqual(cfg.classes, r.test.perClass && Object.keys(r.test.perClass));
  const log = readLog(dir);
  assert.deepEqual(log.map((l) => l.epoch), [1, 2]);
  assert.ok(r.bestEpoch >= 1 && r.bestEpoch <= 2);
  assert.equal(r.val.acc, Math.max(...log.map((l) => l.valAcc)), 'model selection: best validation epoch');
  assert.equal(cfg.preciseBn, 'auto', 'precise BN follows the method (on for gated ones)');
  // Is the gate learning? Every epoch line says so, per layer and overall.
  for (const l of log) {
    const g = l.gates!;
    assert.ok(g && g.layers.length === r.gates!.layers.length, 'gate learning per gated layer');
    assert.ok(g.fraction >= 0 && g.fraction <= 1 && g.filtersVarying >= 0 && g.filtersVarying <= 1);
    assert.ok(g.meanAbsLogit! > 0, 'mean |z|');
    assert.ok(g.drift! > 0, 'F moved away from S');
    assert.ok(g.layers.every((x) => x.name && x.drift! >= 0));
  }
  // Quick Draw has 100 images per class; 20% test → 60 images over 3 classes.
  assert.equal(r.test.examples, 60);
  assert.ok(r.gates && r.gates.layers.length > 0, 'AdaFilter runs record gate statistics');
  assert.ok(r.gates!.layers.every((l) => Object.keys(l.perClass).every((k) => cfg.classes.includes(k))), 'per-class gate fractions by class name');
  assert.ok(r.params.frozen > 0 && r.params.trainable > 0);

  const e = await evaluate(dir);
  assert.equal(e.acc, r.test.acc);
  assert.equal(e.loss, r.test.loss);
  const run = loadRun(dir);
  assert.equal(run.model.method, 'adafilter');
  run.model.dispose();
});

test('same seed, same machine: identical weights and numbers; another seed: other weights', async () => {
  const base = tmpDir('det');
  const a = await fineTune({ ...SMALL_API, method: 'adafilter', epochs: 1, out: path.join(base, 'a') });
  const b = await fineTune({ ...SMALL_API, method: 'adafilter', epochs: 1, out: path.join(base, 'b') });
  const c = await fineTune({ ...SMALL_API, method: 'adafilter', epochs: 1, seed: 1, out: path.join(base, 'c') });
  const w = (d: string) => fs.readFileSync(path.join(d, 'model.safetensors'));
  assert.ok(w(a.dir).equals(w(b.dir)));
  assert.equal(a.test.loss, b.test.loss);
  assert.deepEqual(readLog(a.dir).map((l) => l.trainLoss), readLog(b.dir).map((l) => l.trainLoss));
  assert.ok(!w(a.dir).equals(w(c.dir)));
});

test('predict gives top-k class names and probabilities for image files', async () => {
  const base = tmpDir('predict');
  const r = await fineTune({ ...SMALL_API, method: 'finetune', epochs: 1, out: path.join(base, 'run') });
  const ds = await openDataset('quickdraw:300-302', { seed: 0 });
  const s = ds.storage;
  assert.equal(s.kind, 'memory');
  const files: string[] = [];
  for (const it of ds.splits.test!.slice(0, 2)) {
    if (s.kind !== 'memory') break;
    const n = s.height * s.width * s.channels;
    const px = Buffer.from(new Uint8Array(s.pixels, it.index * n, n));
    const f = path.join(base, `img${files.length}.png`);
    await sharp(px, { raw: { width: s.width, height: s.height, channels: s.channels } }).png().toFile(f);
    files.push(f);
  }
  const preds = await predict(r.dir, files, { topk: 2 });
  assert.equal(preds.length, 2);
  for (const p of preds) {
    assert.equal(p.top.length, 2);
    assert.ok(p.top[0].probability >= p.top[1].probability);
    assert.ok(ds.classes.includes(p.top[0].class));
    assert.ok(p.top[0].probability + p.top[1].probability <= 1 + 1e-6);
  }
  // The same image file twice: the same prediction (evaluation is deterministic).
  const again = await predict(r.dir, [files[0], files[0]]);
  assert.deepEqual(again[0].top, again[1].top);
});
