/**
 * Reads the code points a TrueType/OpenType font maps (its `cmap` table, formats 4 and 12), so
 * glyph rendering only asks a font for characters it has: canvas would otherwise fall back to
 * another font or draw a .notdef box, and the sample would carry the wrong writer or no letter.
 */
import * as fs from 'node:fs';

export function fontCodepoints(file: string): Set<number> {
  const b = fs.readFileSync(file);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const need = (off: number, len: number) => {
    if (off < 0 || off + len > b.length) throw new Error(`${file}: truncated font table`);
  };
  need(0, 12);
  const numTables = v.getUint16(4);
  let cmapAt = -1;
  for (let i = 0; i < numTables; i++) {
    need(12 + i * 16, 16);
    if (b.toString('latin1', 12 + i * 16, 16 + i * 16) === 'cmap') cmapAt = v.getUint32(12 + i * 16 + 8);
  }
  if (cmapAt < 0) throw new Error(`${file}: no cmap table`);
  need(cmapAt, 4);
  const n = v.getUint16(cmapAt + 2);
  // Prefer the full-repertoire subtable (format 12) over the BMP-only one (format 4).
  let best = -1, bestFormat = 0;
  for (let i = 0; i < n; i++) {
    need(cmapAt + 4 + i * 8, 8);
    const platform = v.getUint16(cmapAt + 4 + i * 8), encoding = v.getUint16(cmapAt + 6 + i * 8);
    const off = cmapAt + v.getUint32(cmapAt + 8 + i * 8);
    need(off, 2);
    const format = v.getUint16(off);
    const unicode = platform === 0 || (platform === 3 && (encoding === 1 || encoding === 10));
    if (!unicode) continue;
    if (format === 12 && bestFormat !== 12) { best = off; bestFormat = 12; }
    else if (format === 4 && bestFormat === 0) { best = off; bestFormat = 4; }
  }
  const out = new Set<number>();
  if (best < 0) return out;
  if (bestFormat === 4) {
    need(best, 14);
    const segX2 = v.getUint16(best + 6);
    const ends = best + 14, starts = ends + segX2 + 2, deltas = starts + segX2, ranges = deltas + segX2;
    need(ends, segX2 * 4 + 2);
    for (let s = 0; s < segX2 / 2; s++) {
      const end = v.getUint16(ends + 2 * s), start = v.getUint16(starts + 2 * s);
      const delta = v.getUint16(deltas + 2 * s), rangeOffAt = ranges + 2 * s, rangeOff = v.getUint16(rangeOffAt);
      for (let c = start; c <= end && c !== 0xffff; c++) {
        let glyph: number;
        if (rangeOff === 0) glyph = (c + delta) & 0xffff;
        else {
          const at = rangeOffAt + rangeOff + 2 * (c - start);
          need(at, 2);
          glyph = v.getUint16(at);
          if (glyph !== 0) glyph = (glyph + delta) & 0xffff;
        }
        if (glyph !== 0) out.add(c);
      }
    }
  } else {
    need(best, 16);
    const groups = v.getUint32(best + 12);
    need(best + 16, groups * 12);
    for (let g = 0; g < groups; g++) {
      const start = v.getUint32(best + 16 + g * 12), end = v.getUint32(best + 20 + g * 12);
      const glyph = v.getUint32(best + 24 + g * 12);
      for (let c = start; c <= end && c <= 0x10ffff; c++) if (glyph + (c - start) !== 0) out.add(c);
    }
  }
  return out;
}
