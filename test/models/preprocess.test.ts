/**
 * The backbone's own preprocessing (issue 14): torchvision weights imported with `models import`
 * record ImageNet's mean/std, and our data pipeline fed raw image files reproduces torch's logits on
 * the same images normalised the torchvision way (test/reference/make_preprocess.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { noGrad } from '../../src/engine/autograd';
import { tidy } from '../../src/engine/scope';
import { fromTyped } from '../../src/engine/creation';
import { setNumThreads } from '../../src/engine/runtime';
import { loadSafetensors, readSafetensorsHeader } from '../../src/io/safetensors';
import { openSource } from '../../src/data/registry';
import { createLoader } from '../../src/data/loader';
import { displayPath } from '../../src/data/dataset';
import { evalTransform, IMAGENET_STATS, parseNormalize } from '../../src/data/transforms';
import { inputTransform, openBackboneAsIs, InputSpec } from '../../src/train/backbones';
import { inputsOf } from '../../src/train/batch';
import { isInputError } from '../../src/errors';
import { hasTorch, maxAbs, maxAbsDiff, PYTHON, tmpDir } from './helpers';
import { cli } from '../train/helpers';

setNumThreads(1);
const MAKE = path.join(__dirname, '../../../test/reference/make_preprocess.py');
const noTorch = !hasTorch() && 'needs /usr/bin/python3 with torch and torchvision';

/** Logits of our pipeline on the reference images, in the script's file order (a/0, a/1, b/2). */
async function ourLogits(weights: string, images: string, input?: InputSpec['normalize']): Promise<{ logits: Float32Array; input: InputSpec }> {
  const b = openBackboneAsIs(weights);
  try {
    if (input) b.input.normalize = input;
    const ds = await openSource(`folder:${images}`);
    const t = await inputTransform(b.input, ds);
    const loader = await createLoader(ds, { split: 'train', batch: 8, transform: evalTransform(t), workers: 0, shuffle: false });
    try {
      const out = new Float32Array(3 * 1000);
      for await (const batch of loader.epoch(0)) {
        const l = tidy(() => noGrad(() => b.model.forward(inputsOf(batch)).contiguous().data() as Float32Array));
        batch.rows!.forEach((row, i) => {
          const file = displayPath((ds.storage as { paths: Uint8Array[] }).paths[loader.items[row].index]);
          const k = ['a/0.png', 'a/1.png', 'b/2.png'].findIndex((f) => file.endsWith(f));
          assert.ok(k >= 0, file);
          out.set(l.subarray(i * 1000, (i + 1) * 1000), k * 1000);
        });
      }
      return { logits: out, input: b.input };
    } finally {
      await loader.close();
    }
  } finally {
    b.model.dispose();
  }
}

test('torchvision resnet18 imported: ImageNet mean/std recorded, torch logits reproduced from raw image files', { skip: noTorch, timeout: 300_000 }, async () => {
  const dir = tmpDir('adafilter-preprocess-');
  const r = spawnSync(PYTHON, [MAKE, dir], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const imported = path.join(dir, 'imported.safetensors');
  const imp = cli('models', 'import', `resnet18:${path.join(dir, 'resnet18.safetensors')}`, '--out', imported);
  assert.equal(imp.status, 0, imp.stderr);
  assert.match(imp.stdout, /ImageNet's mean\/std/);
  const meta = readSafetensorsHeader(imported).metadata!;
  assert.deepEqual(JSON.parse(meta['adafilter.input']).normalize, IMAGENET_STATS);
  const inspect = cli('models', 'inspect', imported);
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /input +224 px, 3 channels, .*\(ImageNet's mean\/std\)/);
  assert.match(inspect.stdout, /cuts +linear-probe --features-from: layer1\.0 \(64\), .*layer4\.1 \(512\)/);

  const ref = loadSafetensors(path.join(dir, 'logits.safetensors'));
  try {
    const want = ref.get('logits')!;
    const images = path.join(dir, 'images');
    const { logits, input } = await ourLogits(imported, images);
    assert.deepEqual(input.normalize, IMAGENET_STATS);
    const scale = Math.max(1, maxAbs(want));
    assert.ok(maxAbs(want) > 0.1, 'the reference logits are not trivially small');
    const ours = fromTyped(logits, 'float32', [3, 1000]);
    const err = maxAbsDiff(ours, want);
    ours.dispose();
    assert.ok(err <= 1e-4 * scale, `logits differ from torch's by ${err} (scale ${scale})`);
    // The check can fail: the target's own statistics (the old default) give other logits.
    const other = await ourLogits(imported, images, 'dataset');
    let worst = 0;
    const w = want.contiguous().data() as Float32Array;
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(other.logits[i] - w[i]));
    assert.ok(worst > 100 * 1e-4 * scale, `dataset statistics should change the logits, max diff ${worst}`);
  } finally {
    for (const t of ref.values()) t.dispose();
  }

  // --normalize overrides what the import records; bad values are exit 2 with one line.
  const none = path.join(dir, 'none.safetensors');
  assert.equal(cli('models', 'import', `resnet18:${path.join(dir, 'resnet18.safetensors')}`, '--out', none, '--normalize', 'none').status, 0);
  assert.deepEqual(JSON.parse(readSafetensorsHeader(none).metadata!['adafilter.input']).normalize, { mean: [0, 0, 0], std: [1, 1, 1] });
  const bad = cli('models', 'import', `resnet18:${path.join(dir, 'resnet18.safetensors')}`, '--out', none, '--normalize', '0.5,-1');
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});

test('--normalize values: names, MEAN,STD, per channel; anything else is an InputError', () => {
  assert.equal(parseNormalize('imagenet'), 'imagenet');
  assert.deepEqual(parseNormalize('0.5,0.25'), { mean: [0.5], std: [0.25] });
  assert.deepEqual(parseNormalize('0.1,0.2,0.3,1,2,3'), { mean: [0.1, 0.2, 0.3], std: [1, 2, 3] });
  for (const bad of ['', 'imagenett', '0.5', '0.5,0', '1,2,3,4', '0.5,x', '0.1,0.2,0.3,1,2,-3']) {
    assert.throws(() => parseNormalize(bad), (e) => isInputError(e), bad);
  }
});
