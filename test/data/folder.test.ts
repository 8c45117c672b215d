import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { openDataset } from '../../src/data/registry';
import { createLoader } from '../../src/data/loader';
import { decodeBmp } from '../../src/data/bmp';
import { InputError } from '../../src/errors';
import { bmpBytes, imageBytes, tmpDir, twoClassFolder, writeImage, Rgb } from './helpers';

const RED: Rgb = [220, 20, 20], GREEN: Rgb = [20, 220, 20], BLUE: Rgb = [20, 20, 220];

/** Opening must fail with an InputError whose one-line message names `file` and matches `why`. */
async function rejectsWith(name: string, file: string, why: RegExp, opts = {}): Promise<void> {
  await assert.rejects(openDataset(name, { val: 0, test: 0, ...opts }), (e: unknown) => {
    assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, why);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

/** The dominant channel of the centre pixel of each image, i.e. which colour class it shows. */
async function centreColours(name: string, split: 'train' | 'val' | 'test' = 'train'): Promise<{ label: number; colour: number }[]> {
  const ds = await openDataset(name, { val: 0, test: 0 });
  const loader = await createLoader(ds, { split, batch: 64, workers: 0, shuffle: false, transform: { size: 16, channels: 3 } });
  const out: { label: number; colour: number }[] = [];
  for await (const b of loader.epoch(0)) {
    const [n, c, h, w] = b.shape;
    for (let i = 0; i < n; i++) {
      const v = [0, 1, 2].map((k) => b.x[((i * c + k) * h + h / 2) * w + w / 2]);
      out.push({ label: b.y[i], colour: v.indexOf(Math.max(...v)) });
    }
  }
  await loader.close();
  return out;
}

test('every format and mode decodes to the right label (JPEG, PNG, WebP, GIF, TIFF, BMP; gray, RGBA, 16-bit, CMYK; mixed sizes)', async () => {
  const dir = tmpDir('formats');
  const cls: [string, Rgb][] = [['a_red', RED], ['b_green', GREEN], ['c_blue', BLUE]];
  for (const [name, rgb] of cls) {
    for (const fmt of ['jpg', 'png', 'webp', 'gif', 'tiff'] as const) await writeImage(path.join(dir, name, `x.${fmt}`), fmt, rgb, 20 + name.length, 17);
    fs.writeFileSync(path.join(dir, name, 'x24.bmp'), bmpBytes(13, 7, () => rgb, 24));
    fs.writeFileSync(path.join(dir, name, 'x32.bmp'), bmpBytes(9, 9, () => rgb, 32, true));
    fs.writeFileSync(path.join(dir, name, 'x8.bmp'), bmpBytes(11, 5, (x) => (x === 0 ? [0, 0, 0] : rgb), 8));
    const raw = Buffer.alloc(30 * 30 * 4);
    for (let i = 0; i < 900; i++) raw.set([...rgb, 255], i * 4);
    const base = () => sharp(raw, { raw: { width: 30, height: 30, channels: 4 } });
    fs.writeFileSync(path.join(dir, name, 'rgba.png'), await base().png().toBuffer());
    fs.writeFileSync(path.join(dir, name, 'deep.png'), await base().toColourspace('rgb16').png().toBuffer());
    fs.writeFileSync(path.join(dir, name, 'cmyk.jpg'), await base().removeAlpha().toColourspace('cmyk').jpeg().toBuffer());
    fs.writeFileSync(path.join(dir, name, 'big.JPEG'), await base().removeAlpha().resize(300, 200).jpeg().toBuffer());
  }
  const ds = await openDataset(dir, { val: 0, test: 0 });
  assert.deepEqual(ds.classes, ['a_red', 'b_green', 'c_blue']);
  assert.equal(ds.splits.train.length, 3 * 12);
  assert.equal(ds.channels, 3);
  assert.equal(ds.imageSize, null, 'mixed sizes are reported as such');
  const got = await centreColours(dir);
  assert.equal(got.length, 36);
  for (const g of got) assert.equal(g.colour, g.label, 'label must match the colour its folder holds');
});

test('grayscale folders decode to 1 channel and repeat to 3 on request', async () => {
  const dir = tmpDir('gray');
  for (const [c, v] of [['dark', 40], ['light', 200]] as const) {
    for (let k = 0; k < 2; k++) {
      await fs.promises.mkdir(path.join(dir, c), { recursive: true });
      await sharp(Buffer.alloc(100, v), { raw: { width: 10, height: 10, channels: 1 } }).toColourspace('b-w').png().toFile(path.join(dir, c, `${k}.png`));
    }
  }
  const ds = await openDataset(dir, { val: 0, test: 0 });
  assert.equal(ds.channels, 1);
  assert.deepEqual(ds.imageSize, [10, 10]);
  const loader = await createLoader(ds, { batch: 4, workers: 0, shuffle: false, transform: { size: 8, channels: 3 } });
  for await (const b of loader.epoch(0)) {
    assert.deepEqual(b.shape, [4, 3, 8, 8]);
    for (let i = 0; i < 4; i++) {
      const want = (b.y[i] === 0 ? 40 : 200) / 255;
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(b.x[i * 192 + c * 64 + 27] - want) < 1e-6);
    }
  }
});

test('BMP decoder: exact pixels for 24-bit (row padding), 32-bit top-down and 8-bit paletted', () => {
  const pix = (x: number, y: number): Rgb => [x * 40, y * 50, (x + y) * 10];
  for (const [bpp, top] of [[24, false], [32, true], [8, false]] as const) {
    const img = decodeBmp(bmpBytes(3, 4, pix, bpp, top));
    assert.equal(img.width, 3); assert.equal(img.height, 4);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 3; x++) assert.deepEqual([...img.data.subarray((y * 3 + x) * 3, (y * 3 + x) * 3 + 3)], pix(x, y));
  }
});

test('bad BMPs: truncated pixels, palette index out of range, unsupported depth', async () => {
  const dir = await twoClassFolder('bmp');
  const good = bmpBytes(8, 8, () => [1, 2, 3], 24);
  fs.writeFileSync(path.join(dir, 'b', 'short.bmp'), good.subarray(0, good.length - 10));
  await rejectsWith(dir, 'short.bmp', /truncated BMP pixel data/);
  fs.unlinkSync(path.join(dir, 'b', 'short.bmp'));
  const pal = bmpBytes(4, 4, (x) => [x, 0, 0], 8);
  pal[pal.length - 1] = 200; // only 4 colours in the palette
  fs.writeFileSync(path.join(dir, 'b', 'pal.bmp'), pal);
  await rejectsWith(dir, 'pal.bmp', /palette has 4/);
  fs.unlinkSync(path.join(dir, 'b', 'pal.bmp'));
  const b16 = Buffer.from(good); b16.writeUInt16LE(16, 28);
  fs.writeFileSync(path.join(dir, 'b', 'deep.bmp'), b16);
  await rejectsWith(dir, 'deep.bmp', /unsupported BMP bit depth 16/);
});

test('truncated, empty and non-image files are named with their problem', async () => {
  const dir = await twoClassFolder('trunc');
  const jpg = await imageBytes('jpg', RED, 64, 64);
  const cases: [string, Buffer, RegExp][] = [
    ['half.jpg', jpg.subarray(0, jpg.length >> 1), /truncated or corrupt/],
    ['half.png', (await imageBytes('png', RED, 64, 64)).subarray(0, 60), /truncated or corrupt/],
    ['text.png', Buffer.from('this is not an image\n'), /not an image/],
    ['empty.webp', Buffer.alloc(0), /empty file/],
    ['notes.txt', Buffer.from('hello'), /not an image file \(extension '.txt'\)/],
  ];
  for (const [name, bytes, why] of cases) {
    const f = path.join(dir, 'a', name);
    fs.writeFileSync(f, bytes);
    await rejectsWith(dir, name, why);
    fs.unlinkSync(f);
  }
});

test('unreadable files: dangling link, and permission denied when not root', async () => {
  const dir = await twoClassFolder('unread');
  fs.symlinkSync(path.join(dir, 'nowhere.png'), path.join(dir, 'a', 'dangling.png'));
  await rejectsWith(dir, 'dangling.png', /unreadable/);
  fs.unlinkSync(path.join(dir, 'a', 'dangling.png'));
  if (process.getuid && process.getuid() !== 0) {
    fs.chmodSync(path.join(dir, 'a', '1.png'), 0o000);
    await rejectsWith(dir, '1.png', /permission denied/);
  }
});

test('empty class folder, a single class, images outside class folders', async () => {
  const dir = await twoClassFolder('classes');
  fs.mkdirSync(path.join(dir, 'c_empty'));
  await rejectsWith(dir, 'c_empty', /empty class folder/);
  fs.rmdirSync(path.join(dir, 'c_empty'));
  fs.rmSync(path.join(dir, 'b'), { recursive: true });
  await rejectsWith(dir, dir, /found 1 class \('a'\).*at least 2/);
  await writeImage(path.join(dir, 'b', '1.png'), 'png', GREEN);
  await writeImage(path.join(dir, 'stray.png'), 'png', GREEN);
  await rejectsWith(dir, 'stray.png', /outside a class folder/);
});

test('symlink loops are reported, not followed forever', async () => {
  const dir = await twoClassFolder('loop');
  fs.symlinkSync('..', path.join(dir, 'a', 'up'));
  await rejectsWith(dir, path.join('a', 'up'), /symlink loop/);
  fs.unlinkSync(path.join(dir, 'a', 'up'));
  fs.symlinkSync('self.png', path.join(dir, 'a', 'self.png'));
  await rejectsWith(dir, 'self.png', /symlink loop/);
});

test('one file reached from two classes is an error, not a silent second label', async () => {
  const dir = await twoClassFolder('twice');
  fs.symlinkSync(path.join(dir, 'a', '1.png'), path.join(dir, 'b', 'alias.png'));
  await rejectsWith(dir, 'alias.png', /class 'a' and class 'b'/);
});

test('odd and non-UTF-8 file names load; a non-UTF-8 class name is refused; messages stay one line', async () => {
  const dir = await twoClassFolder('names');
  const png = await imageBytes('png', RED);
  const aDir = Buffer.from(path.join(dir, 'a') + path.sep);
  fs.writeFileSync(Buffer.concat([aDir, Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x70, 0x6e, 0x67])]), png); // f\xff\xfe.png
  fs.writeFileSync(path.join(dir, 'a', 'spaces, commas & ünïcödé 🐦.png'), png);
  fs.writeFileSync(path.join(dir, 'a', 'new\nline.png'), png);
  const ds = await openDataset(dir, { val: 0, test: 0 });
  assert.equal(ds.splits.train.filter((it) => it.label === 0).length, 5);
  const got = await centreColours(dir);
  for (const g of got) assert.equal(g.colour, g.label);

  fs.writeFileSync(path.join(dir, 'a', 'bad\nname.png'), 'not a png');
  await rejectsWith(dir, 'bad\\x0aname.png', /not an image/);
  fs.unlinkSync(path.join(dir, 'a', 'bad\nname.png'));

  const badClass = Buffer.concat([Buffer.from(dir + path.sep), Buffer.from([0x63, 0xff])]);
  fs.mkdirSync(badClass);
  fs.writeFileSync(Buffer.concat([badClass, Buffer.from('/1.png')]), png);
  await rejectsWith(dir, 'c\\xff', /class folder name is not valid UTF-8/);
});

test('skipBad: bad files are left out, counted and listed; classes left empty go too', async () => {
  const dir = await twoClassFolder('skip');
  fs.writeFileSync(path.join(dir, 'a', 'broken.jpg'), 'garbage');
  fs.writeFileSync(path.join(dir, 'b', 'readme.txt'), 'x');
  fs.mkdirSync(path.join(dir, 'c'));
  fs.writeFileSync(path.join(dir, 'c', 'only-bad.png'), '');
  const ds = await openDataset(dir, { val: 0, test: 0, skipBad: true });
  assert.deepEqual(ds.classes, ['a', 'b']);
  assert.equal(ds.splits.train.length, 4);
  assert.equal(ds.skipped.length, 4);
  const names = ds.skipped.map((s) => path.basename(s.path)).sort();
  assert.deepEqual(names, ['broken.jpg', 'c', 'only-bad.png', 'readme.txt']);
});

test('train/ val/ test/ folders are kept as the splits', async () => {
  const dir = tmpDir('splits');
  for (const s of ['train', 'val', 'test']) {
    for (const [c, rgb] of [['x', RED], ['y', GREEN]] as const) {
      for (let k = 0; k < (s === 'train' ? 3 : 1); k++) await writeImage(path.join(dir, s, c, `${k}.png`), 'png', rgb);
    }
  }
  const ds = await openDataset(`folder:${dir}`);
  assert.deepEqual({ train: ds.splits.train.length, val: ds.splits.val?.length, test: ds.splits.test?.length }, { train: 6, val: 2, test: 2 });
  assert.deepEqual(ds.classes, ['x', 'y']);
  for (const s of ['train', 'val', 'test'] as const) for (const g of await centreColours(dir, s)) assert.equal(g.colour, g.label);
  await writeImage(path.join(dir, 'test', 'z', '0.png'), 'png', BLUE);
  await rejectsWith(dir, "'z'", /appears in test but has no training images/);
});

test('CSV manifest: quoted paths, splits, missing files and conflicting labels', async () => {
  const dir = await twoClassFolder('manifest');
  fs.copyFileSync(path.join(dir, 'a', '1.png'), path.join(dir, 'a', 'with,comma.png'));
  const csv = path.join(dir, 'list.csv');
  fs.writeFileSync(csv, 'path,label,split\n"a/with,comma.png",red\na/2.png,red,test\nb/1.png,green\nb/2.png,green,test\na/1.png,red\n');
  const ds = await openDataset(csv, { val: 0 });
  assert.deepEqual(ds.classes, ['green', 'red']);
  assert.equal(ds.splits.train.length, 3);
  assert.equal(ds.splits.test?.length, 2);
  for (const g of await centreColours(csv)) assert.equal(g.colour, 1 - g.label);

  fs.writeFileSync(csv, 'path,label\na/1.png,red\nb/1.png,green\nb/missing.png,green\n');
  await rejectsWith(csv, 'row 4: b/missing.png', /file not found/);
  fs.writeFileSync(csv, 'a/1.png,red\nb/1.png,green\na/1.png,green\n');
  await rejectsWith(csv, 'row 3', /listed again with label 'green' \(was 'red'\)/);
  fs.writeFileSync(csv, 'a/1.png,red\na/2.png,red\n');
  await rejectsWith(csv, csv, /at least 2/);
});
