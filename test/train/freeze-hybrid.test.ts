/**
 * The pretraining study's training configurations (issue 19): `--freeze-through LAYER` (finetune
 * with the stem and the blocks up to LAYER frozen: weights and BN statistics bit-identical after
 * training, the rest moves) and `--init hybrid:LAYER` (the pretrained file up to LAYER, the seeded
 * fresh initialisation after it). Bad names are one line with the valid ones, exit 2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn, randint } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { SGD } from '../../src/optim/sgd';
import { applyMethod } from '../../src/methods';
import { buildModel } from '../../src/models/registry';
import { loadSafetensors, saveSafetensors } from '../../src/io/safetensors';
import { openBackbone } from '../../src/train/backbones';
import { applyInit } from '../../src/train/hybrid-init';
import { splitNames } from '../../src/methods/layer-split';
import { fineTune } from '../../src/train/trainer';
import { readRunConfig } from '../../src/train/run-folder';
import { InputError } from '../../src/errors';
import { SMALL, SMALL_API, cli, tmpDir } from './helpers';
import { fakePretrained, step } from '../methods/helpers';

setNumThreads(1);

const same = (a: Tensor, b: Tensor) => a.shape.join() === b.shape.join() && a.sub(b).abs().max().item() === 0;
const isBelow = (name: string, prefixes: string[]) => prefixes.some((p) => name === p || name.startsWith(`${p}.`));
/** Every tensor of the state dict, copied (the live ones change under training). */
const snapshot = (m: { stateDict(): Map<string, Tensor> }) => new Map([...m.stateDict()].map(([k, t]) => [k, t.clone()]));

/** A resnet20 "pretrained" weights file (non-trivial BN statistics) that openBackbone reads. */
function pretrainedFile(dir: string, seed: number): string {
  const file = path.join(dir, `pre-${seed}.safetensors`);
  const m = fakePretrained(seed, 7);
  saveSafetensors(m, file, { 'adafilter.arch': 'resnet20', 'adafilter.input': JSON.stringify({ size: 32, channels: 3, normalize: 'dataset' }) });
  m.dispose();
  return file;
}

test('freezeThrough: the stem and blocks up to the layer (weights and BN statistics) stay bit-identical under momentum and weight decay; the rest moves', () => {
  manualSeed(3);
  const x = randn([8, 3, 16, 16]), y = randint(0, 5, [8]);
  const m = applyMethod('finetune', fakePretrained(1), 5, { freezeThrough: 'layer2.0' });
  const before = snapshot(m.backbone);
  const opt = new SGD(m.paramGroups({ lr: 0.1, weightDecay: 5e-3 }), { lr: 0.1, momentum: 0.9 });
  m.train();
  for (let k = 0; k < 3; k++) step(m, opt, x, y);
  const below = ['conv1', 'bn1', 'layer1.0', 'layer1.1', 'layer1.2', 'layer2.0'];
  let frozen = 0, moved = 0;
  for (const [name, t] of m.backbone.stateDict()) {
    if (name.endsWith('num_batches_tracked')) continue;
    const b = before.get(name)!;
    if (isBelow(name, below)) { assert.ok(same(t, b), `${name} is frozen`); frozen++; }
    else if (!name.startsWith('fc.')) { if (!same(t, b)) moved++; }
  }
  assert.ok(frozen > 20, `frozen tensors checked: ${frozen}`);
  // Every weight and every BN statistic after layer2.0 moves (biases of BN too).
  const after = [...m.backbone.stateDict().keys()].filter((n) => !isBelow(n, below) && !n.startsWith('fc.') && !n.endsWith('num_batches_tracked'));
  assert.equal(moved, after.length, 'every tensor above the layer changed');
  assert.equal(m.backbone.namedModules().find(([n]) => n === 'layer2.0')![1].training, false, 'frozen blocks in eval mode');
  assert.equal(m.backbone.namedModules().find(([n]) => n === 'layer2.1')![1].training, true);
  const counts = m.parameterCounts();
  assert.ok(counts.frozen > 0 && counts.trainable > 0 && counts.total === counts.frozen + counts.trainable);
  opt.dispose(); m.dispose();

  // 'stem' freezes the stem alone; a MobileNetV2 freezes its features.0 and blocks by their names.
  const s = applyMethod('finetune', fakePretrained(2), 5, { freezeThrough: 'stem' });
  const trainable = new Set(s.trainableParameters().map(([p]) => p));
  for (const [name, p] of s.backbone.namedParameters()) assert.equal(trainable.has(p), !isBelow(name, ['conv1', 'bn1']), name);
  s.dispose();
  manualSeed(4);
  const mb = applyMethod('finetune', buildModel('mobilenetv2-0.35', 10), 5, { freezeThrough: 'features.3' });
  const mt = new Set(mb.trainableParameters().map(([p]) => p));
  for (const [name, p] of mb.backbone.namedParameters()) {
    const expect = !isBelow(name, ['features.0', 'features.1', 'features.2', 'features.3']);
    assert.equal(mt.has(p), expect, name);
  }
  mb.dispose();
});

test('freezeThrough: an unknown layer is an InputError listing stem and the blocks; the default freezes nothing', () => {
  const bb = buildModel('resnet20', 10);
  assert.deepEqual(splitNames(bb).slice(0, 3), ['stem', 'layer1.0', 'layer1.1']);
  assert.throws(() => applyMethod('finetune', bb, 5, { freezeThrough: 'layer4.0' }),
    (e: unknown) => e instanceof InputError && /--freeze-through: 'layer4\.0' is not a layer of this resnet backbone; valid: stem, layer1\.0, .*, layer3\.2$/.test(e.message));
  const m = applyMethod('finetune', bb, 5);
  assert.equal(m.parameterCounts().frozen, 0);
  m.dispose();
});

test('hybrid init: up to the layer the pretrained file, after it the seeded fresh init (not the pretrained weights); the head is drawn as in a pretrained run', () => {
  const dir = tmpDir('hybrid');
  const file = pretrainedFile(dir, 11);
  const pre = loadSafetensors(file);
  manualSeed(5);
  const bb = openBackbone(file, 3);
  applyInit(bb, 'hybrid:layer2.0', 5, 3);
  const next = randn([4]);
  manualSeed(5);
  const fresh = buildModel('resnet20', 3);
  const below = ['conv1', 'bn1', 'layer1.0', 'layer1.1', 'layer1.2', 'layer2.0'];
  let kept = 0, reinit = 0;
  const freshState = fresh.stateDict();
  for (const [name, t] of bb.model.stateDict()) {
    if (name.startsWith('fc.')) continue;
    if (isBelow(name, below)) { assert.ok(same(t, pre.get(name)!), `${name} is the pretrained one`); kept++; }
    else {
      assert.ok(same(t, freshState.get(name)!), `${name} is the fresh init`);
      if (!name.endsWith('num_batches_tracked')) assert.ok(!same(t, pre.get(name)!), `${name} differs from the pretrained one`);
      reinit++;
    }
  }
  assert.ok(kept > 20 && reinit > 20, `kept ${kept}, re-initialised ${reinit}`);
  // The generator is where a pretrained run's is after opening its backbone: the new head is the same.
  manualSeed(5);
  const plain = openBackbone(file, 3);
  assert.ok(same(next, randn([4])), 'same draws after hybrid init as after a plain load');
  assert.match(bb.description, /re-initialised after layer2\.0/);
  for (const m of [bb.model, plain.model, fresh]) m.dispose();

  const again = openBackbone(file, 3);
  assert.throws(() => applyInit(again, 'hybrid:layer9.9', 0, 3), (e: unknown) => e instanceof InputError && /valid: stem, layer1\.0/.test(e.message));
  const random = openBackbone('resnet20', 3);
  assert.throws(() => applyInit(random, 'hybrid:layer1.0', 0, 3), (e: unknown) => e instanceof InputError && /randomly initialised already/.test(e.message));
  again.model.dispose(); random.model.dispose();
});

test('a run with --init hybrid and --freeze-through (Transfusion\'s configuration): below the layer the file bit for bit after training, above it moved off the fresh init; run.json records both', async () => {
  const dir = tmpDir('hybrid-run');
  const file = pretrainedFile(dir, 12);
  const out = path.join(dir, 'run');
  const r = await fineTune({ ...SMALL_API, backbone: file, method: 'finetune', methodOptions: { freezeThrough: 'layer1.2' }, init: 'hybrid:layer1.2', steps: 4, seed: 2, out });
  assert.ok(r.params.frozen > 0);
  const cfg = readRunConfig(out);
  assert.equal(cfg.init, 'hybrid:layer1.2');
  assert.deepEqual(cfg.methodOptions, { freezeThrough: 'layer1.2' });
  const pre = loadSafetensors(file);
  const trained = loadSafetensors(path.join(out, 'model.safetensors'));
  manualSeed(2);
  const fresh = buildModel('resnet20', 3).stateDict();
  const below = ['conv1', 'bn1', 'layer1.0', 'layer1.1', 'layer1.2'];
  let moved = 0, above = 0;
  for (const [key, t] of trained) {
    const name = key.replace(/^backbone\./, ''); // a method model's names are its backbone's under backbone.
    if (name.startsWith('fc.') || name.endsWith('num_batches_tracked')) continue;
    if (isBelow(name, below)) assert.ok(same(t, pre.get(name)!), `${name} frozen at the pretrained value`);
    else { above++; if (!same(t, fresh.get(name)!)) moved++; }
  }
  assert.equal(moved, above, 'every tensor above the layer trained away from its fresh init');
  // A resume with another init is refused.
  await assert.rejects(fineTune({ ...SMALL_API, backbone: file, method: 'finetune', methodOptions: { freezeThrough: 'layer1.2' }, init: 'pretrained', steps: 4, seed: 2, out, resume: true }),
    (e: unknown) => e instanceof InputError && /init "hybrid:layer1\.2" → "pretrained"/.test(e.message));
});

test('CLI: bad --freeze-through / --init values are one line, exit 2', () => {
  const dir = tmpDir('freeze-cli');
  const file = pretrainedFile(dir, 13);
  const cases: [string[], RegExp][] = [
    [['--method', 'finetune', '--freeze-through', 'layer4.0'], /--freeze-through: 'layer4\.0' is not a layer of this resnet backbone; valid: stem, layer1\.0, layer1\.1, .*layer3\.2/],
    [['--method', 'adafilter', '--freeze-through', 'layer1.0'], /--freeze-through: only finetune .* \(method adafilter\)/],
    [['--method', 'finetune', '--init', 'hybrid'], /init: expected pretrained or hybrid:LAYER/],
    [['--method', 'finetune', '--init', 'hybrid:layer1.0'], /randomly initialised already/],
    [['--method', 'finetune', '--backbone', file, '--init', 'hybrid:features.3'], /--init hybrid: 'features\.3' is not a layer of this resnet backbone; valid: stem, layer1\.0/],
  ];
  for (const [args, re] of cases) {
    const r = cli('train', ...SMALL, ...args, '--steps', '1', '--out', path.join(dir, 'never'));
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], re);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'never')), 'nothing written');
});
