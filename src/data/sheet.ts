/**
 * Contact sheets: a grid of a dataset's images, to see at a glance what a source really contains
 * (wrong labels, empty renders and odd crops show up here first).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Dataset, Item } from './dataset';
import { resolveTransform } from './transforms';
import { renderBatch } from './pipeline';
import { InputError } from '../errors';

export interface SheetOptions {
  /** Classes shown (rows), first ones by label; default 16. */
  rows?: number;
  /** Images per class (columns); default 8. */
  perClass?: number;
  /** Cell side in pixels; default 48. */
  cell?: number;
  split?: 'train' | 'val' | 'test';
}

/** Renders the sheet as PNG and writes it atomically; returns the number of images drawn. */
export async function writeContactSheet(ds: Dataset, file: string, opts: SheetOptions = {}): Promise<number> {
  const rows = Math.min(opts.rows ?? 16, ds.classes.length);
  const cols = opts.perClass ?? 8;
  const cell = opts.cell ?? 48;
  const items = ds.splits[opts.split ?? 'train'] ?? ds.splits.train;
  const byClass: Item[][] = Array.from({ length: rows }, () => []);
  for (const it of items) if (it.label < rows && byClass[it.label].length < cols) byClass[it.label].push(it);
  const t = resolveTransform({ size: cell, channels: 3 });
  const gap = 2, W = cols * (cell + gap) + gap, H = rows * (cell + gap) + gap;
  const img = Buffer.alloc(W * H * 3, 40);
  let drawn = 0;
  for (let r = 0; r < rows; r++) {
    const idx = byClass[r].map((it) => it.index);
    if (!idx.length) continue;
    const x = await renderBatch({ storage: ds.storage, channels: ds.channels, transform: t, seed: 0 }, idx, 0);
    for (let k = 0; k < idx.length; k++) {
      const ox = gap + k * (cell + gap), oy = gap + r * (cell + gap);
      for (let i = 0; i < cell; i++) for (let j = 0; j < cell; j++) for (let c = 0; c < 3; c++) {
        const v = x[k * 3 * cell * cell + c * cell * cell + i * cell + j];
        img[((oy + i) * W + ox + j) * 3 + c] = Math.max(0, Math.min(255, Math.round(v * 255)));
      }
      drawn++;
    }
  }
  const png = await sharp(img, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir)) throw new InputError(`${file}: folder ${dir} does not exist`);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, png);
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* nothing to clean */ }
    throw new InputError(`${file}: cannot write contact sheet (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return drawn;
}
