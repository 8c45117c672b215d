/**
 * Image folders: one subfolder per class (optionally under train/ val/ test/), or a CSV manifest
 * of `path,label[,split]`. Every file is decoded once when the dataset opens, so a bad file is
 * reported up front with its name instead of failing a worker halfway through training.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Dataset, Item, Skipped, SplitName, Splits, displayPath, isValidUtf8 } from '../dataset';
import { IMAGE_EXTENSIONS, decodeImage, readFileBytes } from '../decode';
import { isBmp } from '../bmp';
import { InputError } from '../../errors';

export interface FolderOptions {
  /** Leave out bad files (and classes left empty) instead of failing; they are listed in `skipped`. */
  skipBad?: boolean;
  /** Decode to this many channels; default 3 if any image has colour, else 1. */
  channels?: 1 | 3;
}

interface Candidate {
  path: Buffer;
  className: string;
  /** Where the class comes from (its folder, or the manifest), for messages. */
  classWhere: string;
  split: SplitName;
}

const SPLITS: SplitName[] = ['train', 'val', 'test'];
const SEP = Buffer.from(path.sep);

function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SEP, name]);
}

function byBytes(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/** Collects the problems of one open: fail on the first, or record them all with skipBad. */
class Problems {
  readonly skipped: Skipped[] = [];
  constructor(private readonly skipBad: boolean) {}
  report(p: Uint8Array | string, reason: string): void {
    if (!this.skipBad) throw new InputError(`${displayPath(p)}: ${reason}`);
    this.skipped.push({ path: displayPath(p), reason });
  }
}

async function statOrReport(p: Buffer, problems: Problems): Promise<fs.Stats | null> {
  try {
    return await fs.promises.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    problems.report(p, code === 'ELOOP' ? 'symlink loop' : code === 'ENOENT' ? 'unreadable (dangling symlink)' :
      `unreadable (${code ?? (e as Error).message})`);
    return null;
  }
}

async function readDir(dir: Buffer): Promise<Buffer[]> {
  try {
    const names = await fs.promises.readdir(dir, { encoding: 'buffer' });
    return names.sort(byBytes);
  } catch (e) {
    throw new InputError(`${displayPath(dir)}: cannot list folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function isHidden(name: Buffer): boolean {
  return name[0] === 0x2e; // '.': .DS_Store, editor swap files
}

function extOf(name: Buffer): string {
  return path.extname(name.toString('latin1')).toLowerCase();
}

/** All image files under a class folder, recursing into subfolders and refusing symlink loops. */
async function walkClass(dir: Buffer, ancestors: Set<string>, problems: Problems, out: Buffer[]): Promise<void> {
  for (const name of await readDir(dir)) {
    if (isHidden(name)) continue;
    const p = join(dir, name);
    const st = await statOrReport(p, problems);
    if (!st) continue;
    if (st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (ancestors.has(key)) { problems.report(p, 'symlink loop (links back to a parent folder)'); continue; }
      ancestors.add(key);
      await walkClass(p, ancestors, problems, out);
      ancestors.delete(key);
    } else if (!st.isFile()) {
      problems.report(p, 'not a regular file');
    } else if (!IMAGE_EXTENSIONS.has(extOf(name))) {
      problems.report(p, `not an image file (extension '${extOf(name) || 'none'}')`);
    } else {
      out.push(p);
    }
  }
}

/** Class subfolders of `dir` (one split, or the whole dataset). */
async function scanClasses(dir: Buffer, split: SplitName, problems: Problems, out: Candidate[], emptyClasses: string[]): Promise<void> {
  const rootSt = await fs.promises.stat(dir);
  for (const name of await readDir(dir)) {
    if (isHidden(name)) continue;
    const p = join(dir, name);
    const st = await statOrReport(p, problems);
    if (!st) continue;
    if (!st.isDirectory()) {
      if (IMAGE_EXTENSIONS.has(extOf(name))) problems.report(p, 'image outside a class folder (its class is unknown)');
      continue; // READMEs, licences and manifests beside the class folders are not data
    }
    if (!isValidUtf8(name)) { problems.report(p, 'class folder name is not valid UTF-8'); continue; }
    const files: Buffer[] = [];
    await walkClass(p, new Set([`${rootSt.dev}:${rootSt.ino}`, `${st.dev}:${st.ino}`]), problems, files);
    const className = name.toString('utf8');
    if (files.length === 0) { emptyClasses.push(displayPath(p)); continue; }
    for (const f of files) out.push({ path: f, className, classWhere: displayPath(p), split });
  }
}

function parseCsv(text: string, where: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = '', i = 0, quoted = false, line = 1;
  const endField = () => { row.push(field); field = ''; };
  const endRow = () => { endField(); if (!(row.length === 1 && row[0].trim() === '')) rows.push(row); row = []; };
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      if (c === '\n') line++;
      field += c; i++; continue;
    }
    if (c === '"' && field === '') { quoted = true; i++; continue; }
    if (c === ',') { endField(); i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { i++; continue; }
    if (c === '\n') { endRow(); line++; i++; continue; }
    field += c; i++;
  }
  if (quoted) throw new InputError(`${where}: unterminated quoted field at line ${line}`);
  if (field !== '' || row.length) endRow();
  return rows;
}

async function scanManifest(file: string, problems: Problems, out: Candidate[]): Promise<void> {
  const bytes = await readFileBytes(file);
  if (!isValidUtf8(bytes)) throw new InputError(`${file}: manifest is not valid UTF-8`);
  const rows = parseCsv(bytes.toString('utf8').replace(/^\ufeff/, ''), file);
  const first = rows[0]?.map((s) => s.trim().toLowerCase());
  const hasHeader = first !== undefined && first[0] === 'path' && first[1] === 'label';
  const base = path.dirname(path.resolve(file));
  const seen = new Map<string, string>();
  for (let r = hasHeader ? 1 : 0; r < rows.length; r++) {
    const row = rows[r];
    const where = `${file} row ${r + 1}`;
    if (row.length < 2 || row.length > 3) throw new InputError(`${where}: expected 'path,label[,split]', got ${row.length} fields`);
    const [rel, label] = [row[0], row[1].trim()];
    const split = (row[2]?.trim() || 'train') as SplitName;
    if (!SPLITS.includes(split)) throw new InputError(`${where}: split '${row[2]}' is not train, val or test`);
    if (rel === '') throw new InputError(`${where}: empty path`);
    if (label === '') throw new InputError(`${where}: empty label`);
    const abs = path.resolve(base, rel);
    const prior = seen.get(abs);
    if (prior !== undefined && prior !== label) throw new InputError(`${where}: ${rel} is listed again with label '${label}' (was '${prior}')`);
    seen.set(abs, label);
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      problems.report(`${where}: ${displayPath(rel)}`, code === 'ENOENT' ? 'file not found' : code === 'ELOOP' ? 'symlink loop' : `unreadable (${code})`);
      continue;
    }
    if (!st.isFile()) { problems.report(`${where}: ${displayPath(rel)}`, 'not a regular file'); continue; }
    out.push({ path: Buffer.from(abs), className: label, classWhere: `${file}: class '${label}'`, split });
  }
}

async function mapLimit<T, R>(xs: T[], limit: number, f: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  const run = async () => { for (let i = next++; i < xs.length; i = next++) out[i] = await f(xs[i], i); };
  await Promise.all(Array.from({ length: Math.min(limit, xs.length) }, run));
  return out;
}

interface Checked { ok: boolean; height: number; width: number; colour: boolean }

/** Decodes each candidate once: proves it readable and learns its size and whether it has colour. */
async function check(c: Candidate, problems: Problems): Promise<Checked> {
  const bad: Checked = { ok: false, height: 0, width: 0, colour: false };
  const where = displayPath(c.path);
  try {
    const bytes = await readFileBytes(c.path);
    let colour = true;
    if (!isBmp(bytes)) {
      try {
        const meta = await sharp(bytes).metadata();
        colour = !(meta.space === 'b-w' || meta.space === 'grey16' || meta.channels === 1 || meta.channels === 2);
      } catch { /* decodeImage below gives the precise message */ }
    }
    const img = await decodeImage(bytes, 1, where);
    return { ok: true, height: img.height, width: img.width, colour };
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    // decodeImage already prefixes the file name; strip it so Problems adds it once.
    problems.report(c.path, e.message.startsWith(where + ': ') ? e.message.slice(where.length + 2) : e.message);
    return bad;
  }
}

export async function openFolder(spec: string, root: string, opts: FolderOptions = {}): Promise<Dataset> {
  const problems = new Problems(Boolean(opts.skipBad));
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(root);
  } catch (e) {
    throw new InputError(`${root}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : `unreadable (${(e as NodeJS.ErrnoException).code})`}`);
  }
  const candidates: Candidate[] = [];
  const emptyClasses: string[] = [];
  let layout: string;
  if (st.isFile()) {
    if (!root.toLowerCase().endsWith('.csv')) throw new InputError(`${root}: expected a folder or a .csv manifest`);
    layout = 'manifest';
    await scanManifest(root, problems, candidates);
  } else {
    const rootBuf = Buffer.from(root);
    const splitDirs = SPLITS.filter((s) => fs.existsSync(path.join(root, s)) && fs.statSync(path.join(root, s)).isDirectory());
    if (splitDirs.includes('train')) {
      layout = `split folders (${splitDirs.join(', ')})`;
      for (const s of splitDirs) await scanClasses(join(rootBuf, Buffer.from(s)), s, problems, candidates, emptyClasses);
    } else {
      if (splitDirs.length) throw new InputError(`${root}: has ${splitDirs.join('/')}/ but no train/ folder`);
      layout = 'class folders';
      await scanClasses(rootBuf, 'train', problems, candidates, emptyClasses);
    }
  }
  for (const e of emptyClasses) problems.report(e, 'empty class folder (no images)');

  const checked = await mapLimit(candidates, 4, (c) => check(c, problems));
  const good = candidates.filter((_, i) => checked[i].ok);
  const goodChecks = checked.filter((c) => c.ok);
  const emptied = new Map<string, string>();
  for (const c of candidates) emptied.set(`${c.split}/${c.className}`, c.classWhere);
  for (const c of good) emptied.delete(`${c.split}/${c.className}`);
  for (const where of new Set(emptied.values())) problems.report(where, 'no usable images left in this class');

  const trainClasses = new Set(good.filter((c) => c.split === 'train').map((c) => c.className));
  for (const c of good) {
    if (!trainClasses.has(c.className)) {
      throw new InputError(`${root}: class '${c.className}' appears in ${c.split} but has no training images`);
    }
  }
  const classes = [...trainClasses].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (classes.length < 2) {
    throw new InputError(`${root}: found ${classes.length} class${classes.length === 1 ? ` ('${classes[0]}')` : 'es'} with images; at least 2 are needed` +
      (problems.skipped.length ? ` (${problems.skipped.length} files skipped)` : ''));
  }

  // The same file reached under two classes (a symlink, a manifest) would train on a wrong label.
  const labelOf = new Map<string, string>();
  const stats = await mapLimit(good, 8, (c) => fs.promises.stat(c.path));
  for (let i = 0; i < good.length; i++) {
    const key = `${stats[i].dev}:${stats[i].ino}`;
    const prior = labelOf.get(key);
    if (prior !== undefined && prior !== good[i].className) {
      throw new InputError(`${displayPath(good[i].path)}: same file is in class '${prior}' and class '${good[i].className}'`);
    }
    labelOf.set(key, good[i].className);
  }

  const splits: Splits = { train: [] };
  const paths: Uint8Array[] = [];
  good.forEach((c, i) => {
    const item: Item = { index: i, label: classes.indexOf(c.className) };
    paths.push(new Uint8Array(c.path));
    (splits[c.split] ??= []).push(item);
  });
  const sizes = new Set(goodChecks.map((c) => `${c.height}x${c.width}`));
  const imageSize: [number, number] | null = sizes.size === 1 ? [goodChecks[0].height, goodChecks[0].width] : null;
  const channels = opts.channels ?? (goodChecks.some((c) => c.colour) ? 3 : 1);
  return {
    name: spec,
    classes,
    splits,
    imageSize,
    channels,
    source: `${layout} at ${path.resolve(root)}`,
    license: 'as licensed by its owner (local files)',
    storage: { kind: 'files', paths },
    skipped: problems.skipped,
  };
}
