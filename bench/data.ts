/**
 * Data pipeline throughput: images per second the loader delivers with training augmentation
 * (random crop with padding, flip, rotation, dataset normalisation), consumed as fast as possible.
 * Not a test; the lead wires it into `adafilter bench data` beside the training throughput.
 */
import { openDataset } from '../src/data/registry';
import { createLoader } from '../src/data/loader';

export interface DataBenchOptions {
  data: string;
  batch?: number;
  imageSize?: number;
  workers?: number;
  seconds?: number;
}

export interface DataBenchResult {
  data: string;
  images_per_s: number;
  batches_per_s: number;
  workers: number;
  batch: number;
  image_size: number;
  channels: number;
  images: number;
  seconds: number;
  open_s: number;
}

export async function runDataBench(opts: DataBenchOptions): Promise<DataBenchResult> {
  const batch = opts.batch ?? 32, size = opts.imageSize ?? 32, workers = opts.workers ?? 2, seconds = opts.seconds ?? 5;
  const t0 = performance.now();
  const ds = await openDataset(opts.data, { seed: 0 });
  const openS = (performance.now() - t0) / 1000;
  const loader = await createLoader(ds, {
    batch, workers, seed: 0,
    transform: { size, channels: 3, crop: 'random', pad: Math.round(size / 8), flip: true, rotate: 10, normalize: 'dataset' },
  });
  let images = 0, batches = 0, start = 0, epoch = 0;
  try {
    // The first batch pays for worker start-up; time from its arrival.
    outer: for (;;) {
      for await (const b of loader.epoch(epoch++)) {
        if (start === 0) { start = performance.now(); continue; }
        images += b.y.length; batches++;
        if (performance.now() - start >= seconds * 1000) break outer;
      }
      if (start === 0) throw new Error('runDataBench: the split holds a single batch; nothing to time');
    }
  } finally {
    await loader.close();
  }
  const elapsed = (performance.now() - start) / 1000;
  return {
    data: opts.data, images_per_s: images / elapsed, batches_per_s: batches / elapsed, workers, batch,
    image_size: size, channels: 3, images, seconds: elapsed, open_s: openS,
  };
}
