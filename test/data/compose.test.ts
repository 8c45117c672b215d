import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { openDataset, openSource } from '../../src/data/registry';
import { CJK_FAMILY } from '../../src/data/sources/glyphs';
import { DEFAULT_SOURCE, TARGET_SCRIPTS } from '../../src/train/shipped';
import { PROFILES } from '../../bench/transfer-suite';
import { InputError } from '../../src/errors';

const QD = 'quickdraw:0-2';
const GL = 'glyphs:scripts=Runic;max=4;samples=3;size=28';

function pixelsOf(ds: { storage: unknown }, index: number): Uint8Array {
  const s = ds.storage as { pixels: SharedArrayBuffer; height: number; width: number; channels: number };
  const n = s.height * s.width * s.channels;
  return new Uint8Array(s.pixels, index * n, n);
}

test('a composed source keeps each part\'s classes apart and its images intact', async () => {
  const qd = await openSource(QD), gl = await openSource(GL);
  const both = await openSource(`${QD}+${GL}`);
  assert.deepEqual(both.classes, [...qd.classes.map((c) => `quickdraw:${c}`), ...gl.classes.map((c) => `glyphs:${c}`)]);
  assert.equal(both.splits.train.length, qd.splits.train.length + gl.splits.train.length);
  // Every composed item is its part's item under a shifted label: the same pixels, never another part's class.
  const parts = [qd, gl];
  let seen = 0;
  for (const it of both.splits.train) {
    const k = it.label < qd.classes.length ? 0 : 1;
    const part = parts[k];
    const own = part.splits.train[k === 0 ? seen : seen - qd.splits.train.length];
    assert.equal(it.label - (k === 0 ? 0 : qd.classes.length), own.label);
    assert.deepEqual(pixelsOf(both, it.index), pixelsOf(part, own.index));
    seen++;
  }
  // Splits carved from the composition are stratified over all of its classes.
  const split = await openDataset(`${QD}+${GL}`, { seed: 1 });
  const labels = new Set(split.splits.val!.map((i) => i.label));
  assert.equal(labels.size, both.classes.length);
});

test('a composed source is deterministic by seed', async () => {
  const name = `${QD}+${GL}`;
  const a = await openSource(name, { seed: 0 }), b = await openSource(name, { seed: 0 }), c = await openSource(name, { seed: 1 });
  const bytes = (d: typeof a) => Buffer.from(new Uint8Array((d.storage as { pixels: SharedArrayBuffer }).pixels));
  assert.ok(bytes(a).equals(bytes(b)), 'same seed, same renders');
  assert.ok(!bytes(a).equals(bytes(c)), 'another seed renders the glyphs differently');
  assert.deepEqual(a.classes, c.classes);
});

test('parts of different sizes, or one source twice, do not compose: one clear line', async () => {
  await assert.rejects(openSource(`${QD}+glyphs:scripts=Runic;max=4;samples=3;size=32`), (e: Error) => e instanceof InputError && /28×28×1 but 'quickdraw:0-2' is|32×32×1 but 'quickdraw:0-2' is 28×28×1/.test(e.message) && /size=N/.test(e.message));
  await assert.rejects(openSource(`${QD}+${QD}`), /two parts name the same class/);
});

test('the default backbone\'s source leaves out every benchmark target script, the CJK family and digits', async () => {
  // The scripts the transfer benchmark's cells use as targets, from the profiles themselves.
  const used = new Set<string>();
  for (const p of Object.values(PROFILES)) {
    const cells = [...p.cells, ...p.search.map((s) => s.cell)];
    for (const c of cells) {
      const m = /^glyphs:scripts=([^;]+)/.exec(c.data ?? '');
      if (m) for (const s of m[1].split(',')) used.add(s);
    }
  }
  assert.ok(used.size > 0);
  for (const s of used) assert.ok(TARGET_SCRIPTS.includes(s), `benchmark target script ${s} is excluded from pretraining`);
  // The rendered class list of the real source (one render per letter is enough to list the classes).
  const ds = await openSource(DEFAULT_SOURCE.replace(/samples=\d+/, 'samples=1'));
  const glyphClasses = ds.classes.filter((c) => c.startsWith('glyphs:'));
  assert.ok(glyphClasses.length >= 1000, `${glyphClasses.length} letter classes`);
  const scripts = new Set(glyphClasses.map((c) => c.split(':')[1]));
  for (const s of [...TARGET_SCRIPTS, ...CJK_FAMILY]) assert.ok(!scripts.has(s), `${s} is absent`);
  for (const c of glyphClasses) {
    const ch = c.slice(c.lastIndexOf(':') + 1);
    for (const s of [...TARGET_SCRIPTS, ...CJK_FAMILY]) assert.doesNotMatch(ch, new RegExp(`\\p{Script=${s}}`, 'u'), `${c} is not ${s}`);
    assert.doesNotMatch(ch, /\p{Nd}/u, `${c} is not a digit`);
  }
  assert.equal(ds.classes.filter((c) => c.startsWith('quickdraw:')).length, 245);
});
