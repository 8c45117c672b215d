/**
 * What one worker (or the main thread, with workers: 0) does for a batch: load each item's pixels
 * and transform them with a generator derived from (seed, epoch, item). Nothing depends on which
 * thread runs it or what it ran before, which is why batches are identical for any worker count.
 */
import { RawImage, Storage, displayPath } from './dataset';
import { ResolvedTransform, applyTransform } from './transforms';
import { decodeImage, readFileBytes } from './decode';
import { Rng } from './rng';

/** Everything a worker needs, all of it structured-cloneable (the pixel buffer is shared, not copied). */
export interface PipelineConfig {
  storage: Storage;
  /** Channels files are decoded to. */
  channels: 1 | 3;
  transform: ResolvedTransform;
  seed: number;
}

export async function loadRaw(storage: Storage, channels: 1 | 3, index: number, minSide?: number): Promise<RawImage> {
  if (storage.kind === 'memory') {
    const n = storage.height * storage.width * storage.channels;
    return { data: new Uint8Array(storage.pixels, index * n, n), height: storage.height, width: storage.width, channels: storage.channels };
  }
  const p = storage.paths[index];
  return decodeImage(await readFileBytes(p), channels, displayPath(p), minSide);
}

/** Fills a CHW float32 batch for `indices` (storage indices). */
export async function renderBatch(cfg: PipelineConfig, indices: ArrayLike<number>, epoch: number): Promise<Float32Array> {
  const t = cfg.transform;
  const per = t.channels * t.height * t.width;
  const out = new Float32Array(indices.length * per);
  for (let b = 0; b < indices.length; b++) {
    const img = await loadRaw(cfg.storage, cfg.channels, indices[b], t.resize);
    applyTransform(img, t, new Rng(cfg.seed, epoch, indices[b]), out, b * per);
  }
  return out;
}
