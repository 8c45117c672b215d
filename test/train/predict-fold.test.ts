import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import sharp from 'sharp';
import { fineTune } from '../../src/train/trainer';
import { loadRun } from '../../src/train/load-run';
import { predictWith } from '../../src/train/predict';
import { openDataset } from '../../src/data/registry';
import { BatchNorm2d } from '../../src/nn/batchnorm';
import { SMALL_API, cli, tmpDir } from './helpers';

// predict folds BN into the convolutions by default (nn/fold-bn.ts); --no-fold-bn runs the model as
// trained. Checked on the shipped default backbone, fine-tuned for one epoch.

async function testImages(dir: string, n: number): Promise<string[]> {
  const ds = await openDataset('quickdraw:300-302', { seed: 0 });
  const s = ds.storage;
  assert.equal(s.kind, 'memory');
  if (s.kind !== 'memory') return [];
  const files: string[] = [];
  for (const it of ds.splits.test!.slice(0, n)) {
    const size = s.height * s.width * s.channels;
    const f = path.join(dir, `img${files.length}.png`);
    await sharp(Buffer.from(new Uint8Array(s.pixels, it.index * size, size)), { raw: { width: s.width, height: s.height, channels: s.channels } }).png().toFile(f);
    files.push(f);
  }
  return files;
}

test('predict with BN folded agrees with the unfolded model within 1e-5 on the shipped default backbone, and leaves the model as it was', async () => {
  const base = tmpDir('predict-fold');
  const r = await fineTune({ ...SMALL_API, backbone: 'default', method: 'finetune', epochs: 1, out: path.join(base, 'run') });
  const files = await testImages(base, 6);
  const run = loadRun(r.dir);
  try {
    const state = () => [...run.model.stateDict()].map(([k, t]) => [k, t.toArray()] as const);
    const before = state();
    const bnCount = run.model.modules().filter((m) => m instanceof BatchNorm2d).length;
    assert.ok(bnCount > 0);
    const topAll = { topk: 3 };
    const folded = await predictWith(run, files, topAll);
    const plain = await predictWith(run, files, { ...topAll, foldBn: false });
    assert.equal(state().length, before.length);
    assert.deepEqual(state(), before, 'weights, running statistics and num_batches_tracked unchanged by a folded predict');
    assert.equal(run.model.modules().filter((m) => m instanceof BatchNorm2d).length, bnCount, 'the BN layers are back');
    const p = (preds: typeof plain) => preds.flatMap((x) => [...x.top].sort((a, b) => a.index - b.index).map((t) => t.probability));
    const diff = Math.max(...p(folded).map((v, i) => Math.abs(v - p(plain)[i])));
    assert.ok(diff <= 1e-5, `max |folded − plain| probability = ${diff}`);
    // The fold ran: rounding makes some probabilities differ in their last bits.
    assert.notDeepEqual(p(folded), p(plain));
    assert.deepEqual(folded.map((x) => x.top.map((t) => t.class)), plain.map((x) => x.top.map((t) => t.class)));
  } finally {
    run.model.dispose();
  }

  // The CLI: --no-fold-bn is accepted and gives the same classes; an unknown flag is refused.
  const json = (args: string[]) => {
    const out = cli('predict', r.dir, ...files.slice(0, 2), '--json', ...args);
    assert.equal(out.status, 0, out.stderr);
    return JSON.parse(out.stdout) as { top: { class: string; probability: number }[] }[];
  };
  const a = json([]);
  const b = json(['--no-fold-bn']);
  assert.deepEqual(a.map((x) => x.top.map((t) => t.class)), b.map((x) => x.top.map((t) => t.class)));
  a.forEach((x, i) => x.top.forEach((t, j) => assert.ok(Math.abs(t.probability - b[i].top[j].probability) <= 1e-5)));
});
