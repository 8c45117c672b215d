/** --normalize on train: the run uses and records the statistics asked for instead of the weights'. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { fineTune } from '../../src';
import { readRunConfig } from '../../src/train/run-folder';
import { datasetStats } from '../../src/data/loader';
import { openDataset } from '../../src/data/registry';
import { IMAGENET_STATS } from '../../src/data/transforms';
import { SMALL, SMALL_API, cli, tmpDir } from './helpers';

test('--normalize: imagenet and explicit statistics replace the default; bad values are exit 2', async () => {
  const base = tmpDir('normalize');
  // A random-weights architecture defaults to the target's own statistics.
  const plain = await fineTune({ ...SMALL_API, method: 'linear-probe', epochs: 1, out: path.join(base, 'plain') });
  const ds = await openDataset('quickdraw:300-302', { seed: 0, shots: 6 });
  const own = await datasetStats(ds, 3);
  assert.deepEqual(readRunConfig(plain.dir).input.resolvedStats, own);
  const imagenet = await fineTune({ ...SMALL_API, method: 'linear-probe', epochs: 1, normalize: 'imagenet', out: path.join(base, 'imagenet') });
  assert.deepEqual(readRunConfig(imagenet.dir).input.resolvedStats, IMAGENET_STATS);
  assert.notEqual(imagenet.val.loss, plain.val.loss, 'the input changed');
  const out = path.join(base, 'cli');
  const r = cli('train', ...SMALL, '--method', 'linear-probe', '--epochs', '1', '--normalize', '0.5,0.25', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readRunConfig(out).input.resolvedStats, { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  const bad = cli('train', ...SMALL, '--epochs', '1', '--normalize', 'imagnet', '--out', path.join(base, 'bad'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--normalize: expected dataset, imagenet, none, MEAN,STD or M1,M2,M3,S1,S2,S3, got 'imagnet'/);
  const both = cli('train', ...SMALL, '--epochs', '1', '--steps', '10', '--out', path.join(base, 'both'));
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--steps or --epochs, not both/);
});
