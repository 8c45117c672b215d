/**
 * The report's "what fine-tuning changed" heatmap (issue 19): similarity results kept in run folders
 * (analyze similarity --out RUN/similarity.json) drawn per layer × method, mean over a method's runs,
 * next to AdaFilter's fine-tuned-filter share per block; a malformed file is one InputError naming
 * it; and the whole chain on a real run: train → analyze --out → report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeReport } from '../../src/report';
import { InputError } from '../../src/errors';
import { tmpDir, writeCompare } from './fixtures';
import { SMALL, cli } from '../train/helpers';

const BLOCKS = [1, 2, 3].flatMap((s) => [0, 1, 2].map((b) => `layer${s}.${b}`));

function writeSimilarity(dir: string, metric: 'cka' | 'svcca', value: (layer: number) => number, file = 'similarity.json'): void {
  fs.writeFileSync(path.join(dir, file), JSON.stringify({
    a: 'default', b: dir, data: 'quickdraw:cat,dog,fish', split: 'val', images: 100, metric, pool: 'mean',
    layers: BLOCKS.map((name, i) => ({ name, widthA: 16, widthB: 16, [metric]: value(i), ...(metric === 'cka' ? { ckaDebiased: value(i) - 0.05 } : {}) })),
  }));
}

const texts = (svg: string) => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);

test('similarity heatmap: per layer and method, the mean over the runs; beside it the gated method\'s fine-tuned share per block', async () => {
  const root = tmpDir('sim');
  const cmp = writeCompare(root);
  writeSimilarity(path.join(cmp, 'finetune-s0'), 'cka', (i) => 0.9 - 0.05 * i);
  writeSimilarity(path.join(cmp, 'finetune-s1'), 'cka', (i) => 0.7 - 0.05 * i);
  writeSimilarity(path.join(cmp, 'adafilter-s0'), 'cka', () => 0.95);
  writeSimilarity(path.join(cmp, 'adafilter-s0'), 'svcca', () => 0.5, 'similarity-svcca.json');
  const files = await writeReport([cmp], path.join(root, 'out'));
  const names = files.svgs.map((f) => path.basename(f));
  assert.ok(names.includes('report-similarity.svg') && names.includes('report-similarity-svcca.svg'), names.join(', '));
  const svg = fs.readFileSync(path.join(root, 'out', 'report-similarity.svg'), 'utf8');
  const t = texts(svg);
  for (const b of BLOCKS) assert.ok(t.includes(b), `row ${b}`);
  assert.ok(t.includes('finetune') && t.includes('adafilter'));
  // finetune's layer1.0: mean of 0.9 and 0.7; its layer3.2: mean of 0.5 and 0.3.
  assert.ok(t.includes('0.80') && t.includes('0.40'), t.join(' | '));
  assert.ok(t.includes('0.95'));
  // AdaFilter's share per block: its two runs' result.json gates, the block's convolutions weighted by filters.
  const share = (block: string) => {
    const per = ['adafilter-s0', 'adafilter-s1'].map((d) => JSON.parse(fs.readFileSync(path.join(cmp, d, 'result.json'), 'utf8')).gates.layers
      .filter((l: { name: string }) => l.name.startsWith(`${block}.`)).reduce((s: number, l: { fraction: number }) => s + l.fraction, 0) / 2);
    return (per[0] + per[1]) / 2;
  };
  for (const b of ['layer1.0', 'layer3.2']) assert.ok(t.includes(`${Math.round(100 * share(b))}%`), `${b}: ${Math.round(100 * share(b))}% in ${t.join(' | ')}`);
  const md = fs.readFileSync(files.md, 'utf8');
  assert.match(md, /What fine-tuning changed: linear CKA per layer/);
  assert.match(md, /mean over 3 analyses/);
  // Without similarity files there is no such chart.
  const plain = writeCompare(tmpDir('sim-none'));
  const none = await writeReport([plain], path.join(root, 'out2'));
  assert.ok(!none.svgs.some((f) => f.includes('similarity')));
});

test('a malformed similarity file is one InputError naming the file and the field', async () => {
  const cmp = writeCompare(tmpDir('sim-bad'));
  const file = path.join(cmp, 'finetune-s0', 'similarity.json');
  fs.writeFileSync(file, JSON.stringify({ a: 'default', b: 'x', images: 10, metric: 'cosine', layers: [] }));
  await assert.rejects(writeReport([cmp], path.join(cmp, 'out')), (e: unknown) => e instanceof InputError && e.message.includes(file) && /'metric' should be 'cka' or 'svcca'/.test(e.message));
  fs.writeFileSync(file, JSON.stringify({ a: 'default', b: 'x', images: 10, metric: 'cka', layers: [{ name: 'layer1.0', cka: 'high' }] }));
  await assert.rejects(writeReport([cmp], path.join(cmp, 'out')), (e: unknown) => e instanceof InputError && /'layers\[0\]\.cka' should be a number or null/.test(e.message));
});

test('train → analyze similarity --out RUN/similarity.json → report draws it (real run, CLI)', () => {
  const root = tmpDir('sim-cli');
  const run = path.join(root, 'ft');
  const t = cli('train', ...SMALL, '--method', 'finetune', '--steps', '2', '--out', run);
  assert.equal(t.status, 0, t.stderr);
  const a = cli('analyze', 'similarity', 'resnet20', run, '--data', 'quickdraw:300-302', '--images', '8', '--batch', '8', '--threads', '1', '--out', path.join(run, 'similarity.json'));
  assert.equal(a.status, 0, a.stderr);
  const saved = JSON.parse(fs.readFileSync(path.join(run, 'similarity.json'), 'utf8'));
  assert.equal(saved.layers.length, 9);
  assert.ok(saved.layers.every((l: { cka: number }) => l.cka > 0 && l.cka <= 1 + 1e-9));
  const r = cli('report', run, '--out', path.join(root, 'rep'));
  assert.equal(r.status, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(root, 'rep', 'report-similarity.svg')));
  const bad = cli('analyze', 'similarity', 'resnet20', run, '--data', 'quickdraw:300-302', '--images', '8', '--out', path.join(root, 'x.txt'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr.trim(), /^adafilter analyze: --out: expected a \.json file, got/);
});
