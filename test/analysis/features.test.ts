/** Block outputs for the analysis: the right tensors, every image once, the model untouched afterwards. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { noGrad } from '../../src/engine/autograd';
import { buildModel } from '../../src/models/registry';
import { blockFeatures, FeatureModel } from '../../src/analysis/features';
import type { Batch } from '../../src/data/loader';
import { Tensor } from '../../src/engine/tensor';

setNumThreads(1);

async function* batches(x: Tensor, size: number): AsyncGenerator<Batch> {
  const data = x.contiguous().data() as Float32Array, [n, c, h, w] = x.shape;
  for (let i = 0; i < n; i += size) {
    const k = Math.min(size, n - i);
    yield { x: data.slice(i * c * h * w, (i + k) * c * h * w), y: Int32Array.from({ length: k }, (_, j) => i + j), shape: [k, c, h, w] };
  }
}

test('blockFeatures: the last block, averaged over H×W, is the backbone\'s own pooled features; image limit and order kept; forward restored', async () => {
  manualSeed(50);
  const model = buildModel('resnet20', 10);
  model.eval();
  const x = randn([11, 3, 16, 16]);
  const m: FeatureModel = {
    spec: 'resnet20', description: '', model, root: model, blocks: model.blocks().map((b) => b.name),
    transform: undefined as never, dispose: () => model.dispose(),
  };
  const f = await blockFeatures(m, ['layer1.0', 'layer3.2'], batches(x, 4), 9);
  assert.equal(f.rows, 9, 'stops at the image limit, mid-batch');
  assert.deepEqual(Array.from(f.labels), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(f.layers.map((l) => [l.name, l.dim]), [['layer1.0', 16], ['layer3.2', 64]]);
  const ref = noGrad(() => model.features(x.narrow(0, 0, 9)).to('float64').data() as Float64Array);
  const got = f.layers[1].data;
  assert.equal(got.length, ref.length);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]));
  assert.ok(worst < 1e-6, `layer3.2 pooled = features(x) (max |Δ| ${worst})`);
  assert.ok(!Object.prototype.hasOwnProperty.call(model.blocks()[0].module, 'forward'), 'the wrapper is removed');
  const flat = await blockFeatures(m, ['layer2.1'], batches(x, 4), 11, 'flat');
  assert.deepEqual(flat.layers[0].grams.map((g) => g.n), [4, 4, 3]);
  assert.equal(flat.layers[0].dim, 32 * 8 * 8);
  model.dispose();
});
