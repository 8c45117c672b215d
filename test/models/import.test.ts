/**
 * Weights made by PyTorch / torchvision (test/reference/make_models.py) load into our models and
 * reproduce PyTorch's eval-mode outputs; our exported files load into torchvision likewise.
 * resnet20 and mobilenetv2-0.5 are committed fixtures; the big ones are generated into a temporary
 * folder at test time (skipped without Debian's python3-torch).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { manualSeed, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { buildModel } from '../../src/models/registry';
import { Backbone } from '../../src/models/backbone';
import { loadInto, loadSafetensors, saveSafetensors, readSafetensorsHeader } from '../../src/io/safetensors';
import { FIXTURES, hasTorch, makeModels, maxAbs, maxAbsDiff, tmpDir } from './helpers';

setNumThreads(1);
const TOL = 1e-4;

/** Loads NAME.safetensors into ARCH and compares logits and features with NAME.io.safetensors. */
function checkImport(dir: string, name: string, arch: string, classes: number): void {
  const m = buildModel(arch, classes).eval();
  const res = loadInto(m, path.join(dir, `${name}.safetensors`));
  assert.equal(res.unexpected.length, 0);
  assert.equal(res.missing.length, 0);
  const io = loadSafetensors(path.join(dir, `${name}.io.safetensors`));
  try {
    tidy(() => noGrad(() => {
      const x = io.get('input')!;
      const logits = m.forward(x), feats = m.features(x);
      const ref = io.get('logits')!, refF = io.get('features')!;
      assert.deepEqual(logits.shape, ref.shape);
      // Absolute 1e-4, scaled up for outputs much larger than 1 (resnet50's random weights give ~100).
      const errL = maxAbsDiff(logits, ref), errF = maxAbsDiff(feats, refF);
      assert.ok(errL <= TOL * Math.max(1, maxAbs(ref)), `${name}: logits differ from PyTorch by ${errL}`);
      assert.ok(errF <= TOL * Math.max(1, maxAbs(refF)), `${name}: features differ from PyTorch by ${errF}`);
      assert.ok(maxAbs(refF) > 0.01, 'the reference features are not trivially zero');
    }));
    // The BN statistics came in too (the fixture sets num_batches_tracked to 7).
    const bn = [...m.stateDict()].find(([k]) => k.endsWith('num_batches_tracked'))!;
    assert.equal(bn[1].item(), 7);
  } finally {
    for (const t of io.values()) t.dispose();
    m.dispose();
  }
}

test('committed fixtures: CIFAR resnet20 (F32) and MobileNetV2 ×0.5 (F16) match PyTorch', () => {
  checkImport(FIXTURES, 'resnet20', 'resnet20', 10);
  checkImport(FIXTURES, 'mobilenetv2-0.5', 'mobilenetv2-0.5', 10);
  const h = readSafetensorsHeader(path.join(FIXTURES, 'mobilenetv2-0.5.safetensors'));
  assert.equal(h.metadata?.arch, 'mobilenetv2-0.5');
  assert.ok(h.entries.some((e) => e.code === 'F16'));
});

const noTorch = !hasTorch() && 'needs /usr/bin/python3 with torch and torchvision';
let generated: string | null = null;
function generatedDir(): string {
  if (!generated) {
    generated = tmpDir('adafilter-models-');
    makeModels(['fixtures', generated, 'resnet18', 'resnet50', 'mobilenetv2', 'mobilenetv2-0.5-timm']);
  }
  return generated;
}
after(() => { if (generated) fs.rmSync(generated, { recursive: true, force: true }); });

test('torchvision resnet18 (1000 classes) and resnet50 (Bottleneck) match PyTorch', { skip: noTorch }, () => {
  checkImport(generatedDir(), 'resnet18', 'resnet18', 1000);
  checkImport(generatedDir(), 'resnet50', 'resnet50', 10);
});

test('torchvision mobilenet_v2 ×1.0 stored as BF16 matches PyTorch', { skip: noTorch }, () => {
  checkImport(generatedDir(), 'mobilenetv2', 'mobilenetv2', 1000);
});

test('timm-named MobileNetV2 weights load by name mapping', { skip: noTorch }, () => {
  const file = path.join(generatedDir(), 'mobilenetv2-0.5-timm.safetensors');
  assert.ok(readSafetensorsHeader(file).entries.some((e) => e.name === 'blocks.3.2.conv_pwl.weight'));
  checkImport(generatedDir(), 'mobilenetv2-0.5-timm', 'mobilenetv2-0.5', 10);
});

test('a pretrained file loads into a model with a new head (skipClassifier)', { skip: noTorch }, () => {
  const m = buildModel('resnet18', 5);
  const file = path.join(generatedDir(), 'resnet18.safetensors');
  assert.throws(() => loadInto(m, file), /fc\.weight' has shape \[1000,512\], the model's 'fc\.weight' is \[5,512\]/);
  const head = noGrad(() => m.classifier().module.weight.clone());
  const r = loadInto(m, file, { skipClassifier: true });
  assert.ok(!r.loaded.includes('fc.weight') && r.loaded.includes('layer4.1.bn2.running_var'));
  assert.equal(maxAbsDiff(m.classifier().module.weight, head), 0);
  head.dispose();
  m.dispose();
});

/** Export: our random model → safetensors → torchvision → the same logits. */
function checkExport(arch: string, classes: number, size: number): void {
  manualSeed(5);
  const dir = tmpDir('adafilter-export-');
  const m = buildModel(arch, classes) as Backbone;
  try {
    // A train-mode pass moves the BN running statistics away from their initial values.
    tidy(() => noGrad(() => { m.train(); m.forward(randn([4, 3, size, size])); }));
    m.eval();
    const x = randn([2, 3, size, size]);
    const ours = noGrad(() => m.forward(x));
    saveSafetensors(m, path.join(dir, 'w.safetensors'));
    saveSafetensors(new Map([['input', x]]), path.join(dir, 'in.safetensors'));
    makeModels(['check', arch, path.join(dir, 'w.safetensors'), path.join(dir, 'in.safetensors'), path.join(dir, 'out.safetensors')]);
    const out = loadSafetensors(path.join(dir, 'out.safetensors'));
    const err = maxAbsDiff(ours, out.get('logits')!);
    assert.ok(err <= TOL * Math.max(1, maxAbs(ours)), `${arch}: torchvision's logits differ by ${err}`);
    for (const t of [x, ours, ...out.values()]) t.dispose();
  } finally {
    m.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('export: our MobileNetV2 ×0.5 and ResNet-34 files give torchvision the same outputs', { skip: noTorch }, () => {
  checkExport('mobilenetv2-0.5', 10, 64);
  checkExport('resnet34', 10, 48);
});
