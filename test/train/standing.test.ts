import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readBenchmarkHeadline } from '../../src/train/standing';
import { tmpDir } from './helpers';

test('the demo reads where AdaFilter stands from the published benchmark summary', () => {
  const root = tmpDir('standing');
  assert.equal(readBenchmarkHeadline(root), null, 'no summary: nothing to say');
  fs.mkdirSync(path.join(root, 'docs', 'results'), { recursive: true });
  const write = (iv: object) => fs.writeFileSync(path.join(root, 'docs', 'results', 'transfer-fidelity.json'), JSON.stringify({
    intervals: { adafilter: iv }, tables: { datasets: { average: { adafilter: { value: 0.42, groups: 6 } } } },
  }));
  write({ estimate: 0.4, lo: -0.31, hi: 1.2, pairs: 60, excludesZero: false });
  assert.equal(readBenchmarkHeadline(root), 'Where AdaFilter stands (transfer benchmark, fidelity profile, docs/results.md): test error +0.42 points ' +
    'vs finetune averaged over 6 datasets, 95% paired bootstrap interval [−0.31, +1.20] over 60 (cell, seed) pairs: no difference from finetune beyond noise.');
  write({ estimate: -1, lo: -1.5, hi: -0.2, pairs: 60, excludesZero: true });
  assert.match(readBenchmarkHeadline(root)!, /\[−1\.50, −0\.20\] over 60 \(cell, seed\) pairs: fewer errors than finetune\.$/);
  fs.writeFileSync(path.join(root, 'docs', 'results', 'transfer-fidelity.json'), '{ torn');
  assert.equal(readBenchmarkHeadline(root), null, 'an unreadable summary is skipped, not fatal to the demo');
});
