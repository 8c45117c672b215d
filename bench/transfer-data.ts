/**
 * Fixed balanced subsets of MNIST / Fashion-MNIST as PNG files and a CSV manifest (path,label,split),
 * which `openDataset` reads as a folder dataset. The full 10,000-image test split would be read by
 * every run and cost more than the few-shot training itself on 2 cores.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { openSource } from '../src/data/registry';
import { Rng } from '../src/data/rng';
import { writeFileAtomic } from '../src/io/atomic';
import { SubsetSpec } from './transfer-suite';

// The subset is the same in every profile and on every machine; run seeds vary the shots drawn from it.
const SUBSET_SEED = 20261128;

/**
 * A minimal 8-bit grayscale / RGB PNG: sharp's per-call overhead made writing a few thousand 28×28
 * images take tens of seconds, deflate alone takes milliseconds. Lossless, so the pixels are the source's.
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = channels === 1 ? 0 : 2; // bit depth 8; colour type gray or RGB
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1); // filter byte 0
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Writes the subset once (the manifest is written last, so its presence means complete) and returns the manifest path. */
export async function materialiseSubset(spec: SubsetSpec, manifest: string): Promise<string> {
  if (fs.existsSync(manifest)) return manifest;
  const ds = await openSource(spec.source);
  if (ds.storage.kind !== 'memory') throw new Error(`${spec.source}: expected in-memory storage`);
  const { pixels, height, width, channels } = ds.storage;
  const px = height * width * channels;
  const view = new Uint8Array(pixels);
  const dir = manifest.replace(/\.csv$/, '');
  const rows: string[] = ['path,label,split'];
  const pick = (items: { index: number; label: number }[], c: number, n: number, stage: number) => {
    const g = items.filter((it) => it.label === c).sort((a, b) => a.index - b.index);
    new Rng(SUBSET_SEED, stage, c).shuffle(g);
    if (g.length < n) throw new Error(`${spec.source}: class ${ds.classes[c]} has ${g.length} images, ${n} needed`);
    return g.slice(0, n);
  };
  for (let c = 0; c < ds.classes.length; c++) {
    const pool = pick(ds.splits.train, c, spec.train + spec.val, 1);
    const parts: [string, typeof pool][] = [['train', pool.slice(0, spec.train)], ['val', pool.slice(spec.train)], ['test', pick(ds.splits.test!, c, spec.test, 2)]];
    for (const [split, items] of parts) {
      const sub = path.join(dir, split, String(c));
      fs.mkdirSync(sub, { recursive: true });
      for (const it of items) {
        const file = path.join(sub, `${it.index}.png`);
        fs.writeFileSync(file, encodePng(view.subarray(it.index * px, (it.index + 1) * px), width, height, channels));
        rows.push(`${csvField(path.relative(path.dirname(manifest), file))},${csvField(ds.classes[c])},${split}`);
      }
    }
  }
  writeFileAtomic(manifest, rows.join('\n') + '\n');
  return manifest;
}
