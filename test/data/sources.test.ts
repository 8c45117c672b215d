import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openDataset, openSource } from '../../src/data/registry';
import { readIdx } from '../../src/data/sources/idx';
import { mnistDir } from '../../src/data/sources/mnist';
import { glyphInventory, openGlyphs, scriptsOfFont } from '../../src/data/sources/glyphs';
import { quickdrawClasses } from '../../src/data/sources/quickdraw';
import { InputError } from '../../src/errors';
import { tmpDir } from './helpers';

function classCounts(labels: number[], k: number): number[] {
  const c = new Array(k).fill(0);
  for (const l of labels) c[l]++;
  return c;
}

test('MNIST: 60000 train / 10000 test, 28x28, published per-class counts', async () => {
  const ds = await openSource('mnist');
  assert.equal(ds.splits.train.length, 60000);
  assert.equal(ds.splits.test?.length, 10000);
  assert.deepEqual(ds.imageSize, [28, 28]);
  assert.equal(ds.classes.length, 10);
  // LeCun's published training-set class frequencies.
  assert.deepEqual(classCounts(ds.splits.train.map((i) => i.label), 10), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  assert.deepEqual(classCounts(ds.splits.test!.map((i) => i.label), 10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  const split = await openDataset('mnist', { seed: 3 });
  assert.equal(split.splits.train.length + split.splits.val!.length, 60000, 'val is carved from train');
  assert.equal(split.splits.test?.length, 10000, 'the own test split is kept');
});

test('Fashion-MNIST (Debian dataset-fashion-mnist): 60000 / 10000, 6000 and 1000 per class', async () => {
  const ds = await openSource('fashion-mnist');
  assert.equal(ds.splits.train.length, 60000);
  assert.equal(ds.splits.test?.length, 10000);
  assert.deepEqual(classCounts(ds.splits.train.map((i) => i.label), 10), new Array(10).fill(6000));
  assert.deepEqual(classCounts(ds.splits.test!.map((i) => i.label), 10), new Array(10).fill(1000));
  assert.equal(ds.classes[9], 'Ankle boot');
});

test('IDX reader rejects bad magic, wrong dimensions and truncated files', () => {
  const dir = tmpDir('idx');
  const src = fs.readFileSync(path.join(mnistDir(), 't10k-labels-idx1-ubyte'));
  const cases: [string, Buffer, RegExp][] = [
    ['magic', Buffer.concat([Buffer.from([1, 0]), src.subarray(2)]), /bad magic/],
    ['dims', src, /expected 3 dimensions, header says 1/],
    ['short', Buffer.from([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]), /truncated/],
  ];
  for (const [name, bytes, why] of cases) {
    const f = path.join(dir, name);
    fs.writeFileSync(f, bytes);
    assert.throws(() => readIdx(f, name === 'dims' ? 3 : 1), (e: unknown) => e instanceof InputError && e.message.includes(f) && why.test(e.message));
  }
});

test('Quick, Draw!: 345 classes x 100, class subsets by index range and by name', async () => {
  const all = await openSource('quickdraw');
  assert.equal(all.classes.length, 345);
  assert.equal(all.splits.train.length, 34500);
  assert.deepEqual(classCounts(all.splits.train.map((i) => i.label), 345), new Array(345).fill(100));
  const range = await openSource('quickdraw:0-244');
  assert.deepEqual(range.classes, quickdrawClasses().slice(0, 245));
  const named = await openSource('quickdraw:dog,cat');
  assert.deepEqual(named.classes, ['dog', 'cat']);
  // The same drawing bytes whichever way the class was selected.
  const px = (ds: typeof all, cls: string, k: number) => {
    const c = ds.classes.indexOf(cls);
    const it = ds.splits.train.filter((i) => i.label === c)[k];
    return Buffer.from(new Uint8Array((ds.storage as { pixels: SharedArrayBuffer }).pixels, it.index * 784, 784));
  };
  assert.ok(px(all, 'cat', 7).equals(px(named, 'cat', 7)));
  assert.ok(px(named, 'cat', 7).some((v) => v > 0));
  await assert.rejects(openSource('quickdraw:cat,unicorn-robot'), /unknown class 'unicorn-robot'/);
  await assert.rejects(openSource('quickdraw:0-400'), /outside 0-344/);
  await assert.rejects(openSource('quickdraw:cat'), /at least 2 classes/);
});

test('glyph scripts map from Noto font names', () => {
  assert.deepEqual(scriptsOfFont('NotoSansOldItalic-Regular.ttf'), ['Old_Italic']);
  assert.deepEqual(scriptsOfFont('NotoSerifArmenian-Bold.ttf'), ['Armenian']);
  assert.deepEqual(scriptsOfFont('NotoSansNKo-Regular.ttf'), ['Nko']);
  assert.deepEqual(scriptsOfFont('NotoSansTamilSupplement-Regular.ttf'), ['Tamil']);
  assert.deepEqual(scriptsOfFont('NotoSans-Regular.ttf'), ['Latin', 'Greek', 'Cyrillic']);
  assert.deepEqual(scriptsOfFont('NotoSansSymbols-Regular.ttf'), []);
  assert.ok(glyphInventory().size > 100, 'fonts-noto-core covers over 100 scripts');
});

test('glyphs: one class per letter, real ink (no tofu), deterministic by seed', () => {
  const a = openGlyphs('glyphs', { scripts: ['Armenian', 'Georgian'], samples: 4, size: 24 });
  const arm = a.classes.filter((c) => c.startsWith('Armenian:'));
  assert.ok(arm.includes('Armenian:Ա') && arm.includes('Armenian:ֆ'), 'upper and lower case letters are classes');
  assert.ok(arm.length >= 70 && arm.length <= 90, `Armenian letters: ${arm.length}`);
  assert.ok(a.classes.some((c) => c === 'Georgian:ა'));
  assert.equal(a.splits.train.length, a.classes.length * 4);
  const pixels = new Uint8Array((a.storage as { pixels: SharedArrayBuffer }).pixels);
  const img = (i: number) => pixels.subarray(i * 576, (i + 1) * 576);
  // Every sample has ink, and samples of a letter differ (the "writers").
  for (let i = 0; i < a.splits.train.length; i++) assert.ok(img(i).reduce((s, v) => s + v, 0) > 255 * 5, `sample ${i} is blank`);
  assert.ok(!Buffer.from(img(0)).equals(Buffer.from(img(1))));
  // Different letters look different: no shared .notdef box.
  const plain = new Set<string>();
  for (let c = 0; c < a.classes.length; c++) plain.add(Buffer.from(img(c * 4)).toString('base64'));
  assert.equal(plain.size, a.classes.length);
  const b = openGlyphs('glyphs', { scripts: ['Georgian', 'Armenian'], samples: 4, size: 24 });
  const c = openGlyphs('glyphs', { scripts: ['Armenian', 'Georgian'], samples: 4, size: 24, seed: 1 });
  const pixB = new Uint8Array((b.storage as { pixels: SharedArrayBuffer }).pixels);
  const k = a.classes.indexOf('Armenian:Ժ'), kb = b.classes.indexOf('Armenian:Ժ');
  assert.ok(Buffer.from(img(k * 4 + 2)).equals(Buffer.from(pixB.subarray((kb * 4 + 2) * 576, (kb * 4 + 3) * 576))), 'a letter renders the same whatever else is selected');
  assert.ok(!Buffer.from(pixels).equals(Buffer.from(new Uint8Array((c.storage as { pixels: SharedArrayBuffer }).pixels))), 'another seed, other renders');
  assert.throws(() => openGlyphs('glyphs', { scripts: ['Klingon'] }), /no fonts for script 'Klingon'/);
});

test('glyph names parse from the dataset name', async () => {
  const ds = await openDataset('glyphs:scripts=Runic,Ogham;samples=3;size=20', { val: 0, test: 0 });
  assert.deepEqual(ds.imageSize, [20, 20]);
  assert.ok(ds.classes.every((c) => c.startsWith('Runic:') || c.startsWith('Ogham:')));
  assert.equal(ds.splits.train.length, ds.classes.length * 3);
  await assert.rejects(openDataset('glyphs:colour=red'), /unknown option 'colour'/);
});
