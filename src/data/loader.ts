/**
 * Batches for training: shuffles by (seed, epoch), renders in a worker_threads pool and keeps
 * `prefetch` batches in flight so the training step does not wait on decoding. Output is plain
 * typed arrays, NCHW; the training code turns them into tensors.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Dataset, Item, SplitName } from './dataset';
import { ResolvedTransform, Stats, TransformSpec, resolveTransform } from './transforms';
import { PipelineConfig, loadRaw, renderBatch } from './pipeline';
import { BatchReply, BatchRequest } from './worker';
import { Rng } from './rng';
import { InputError } from '../errors';

export interface Batch {
  /** N×C×H×W float32, row-major; empty when the loader's `pixels` is off. */
  x: Float32Array;
  /** Labels, indices into dataset.classes. */
  y: Int32Array;
  shape: [number, number, number, number];
  /** Positions of the batch's items in `loader.items` (what a feature cache is indexed by); the Loader always sets it. */
  rows?: Int32Array;
}

/** A loader opened a split: `split` is the split whose images it reads, `as` what it was asked for. */
export interface SplitOpen {
  dataset: string;
  split: SplitName;
  as: SplitName;
  items: number;
}

const splitOpenListeners = new Set<(e: SplitOpen) => void>();

/**
 * Calls `fn` whenever a loader opens a split (returns the unsubscribe function). The rule that a
 * run reads its test split once, at the end, and a validation search never, is checked with it.
 */
export function onSplitOpen(fn: (e: SplitOpen) => void): () => void {
  splitOpenListeners.add(fn);
  return () => { splitOpenListeners.delete(fn); };
}

export interface LoaderOptions {
  split?: SplitName;
  batch?: number;
  transform: TransformSpec | ResolvedTransform;
  /** Worker threads; 0 renders on the calling thread. Default: min(2, CPUs). */
  workers?: number;
  /** Batches requested ahead of the one being consumed; default 2 per worker. */
  prefetch?: number;
  /** Default: true for train, false otherwise. */
  shuffle?: boolean;
  dropLast?: boolean;
  seed?: number;
}

function isResolved(t: TransformSpec | ResolvedTransform): t is ResolvedTransform {
  return (t as ResolvedTransform).mean !== undefined && (t as ResolvedTransform).height !== undefined;
}

/**
 * Per-channel mean and std (of pixels in 0..1) over the training split: all of it for in-memory
 * sources (cheap, exact), up to `limit` evenly spread files for folders (decoding costs).
 */
export async function datasetStats(ds: Dataset, channels: 1 | 3 = ds.channels, limit = ds.storage.kind === 'memory' ? Infinity : 200): Promise<Stats> {
  const items = ds.splits.train;
  const n = Math.min(limit, items.length);
  const sum = new Float64Array(3), sq = new Float64Array(3);
  let count = 0;
  for (let k = 0; k < n; k++) {
    const it = items[Math.floor((k * items.length) / n)];
    const img = await loadRaw(ds.storage, ds.channels, it.index);
    const px = img.height * img.width;
    for (let i = 0; i < px; i++) {
      for (let c = 0; c < channels; c++) {
        const v = (img.channels === 1 ? img.data[i] : channels === 1
          ? 0.299 * img.data[i * 3] + 0.587 * img.data[i * 3 + 1] + 0.114 * img.data[i * 3 + 2]
          : img.data[i * 3 + c]) / 255;
        sum[c] += v; sq[c] += v * v;
      }
    }
    count += px;
  }
  const mean: number[] = [], std: number[] = [];
  for (let c = 0; c < channels; c++) {
    const m = sum[c] / count;
    mean.push(m);
    std.push(Math.max(Math.sqrt(Math.max(sq[c] / count - m * m, 0)), 1e-6));
  }
  return { mean, std };
}

export class Loader {
  readonly classes: string[];
  readonly items: Item[];
  readonly batchSize: number;
  readonly shape: [number, number, number];
  private readonly cfg: PipelineConfig;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (x: Float32Array) => void; reject: (e: Error) => void }>();
  private readonly busy: number[] = [];
  private nextId = 0;
  private closed = false;
  private readonly position = new Map<Item, number>();
  /**
   * Render images (default). Off, epochs yield labels and rows only: for a consumer that already
   * holds what the images would give (a linear probe's cached features).
   */
  pixels = true;

  /** Use createLoader: it resolves dataset statistics first. */
  constructor(ds: Dataset, readonly opts: LoaderOptions & { transform: ResolvedTransform }) {
    const split = opts.split ?? 'train';
    const items = ds.splits[split];
    if (!items) throw new InputError(`${ds.name}: has no ${split} split`);
    if (items.length === 0) throw new InputError(`${ds.name}: ${split} split is empty`);
    this.items = items;
    items.forEach((it, i) => this.position.set(it, i));
    this.classes = ds.classes;
    this.batchSize = opts.batch ?? 32;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new InputError(`batch must be a positive integer, got ${this.batchSize}`);
    const t = opts.transform;
    this.shape = [t.channels, t.height, t.width];
    this.cfg = { storage: ds.storage, channels: ds.channels, transform: t, seed: opts.seed ?? 0 };
    const nWorkers = opts.workers ?? Math.min(2, os.cpus().length);
    if (!Number.isInteger(nWorkers) || nWorkers < 0) throw new InputError(`workers must be a non-negative integer, got ${nWorkers}`);
    for (let w = 0; w < nWorkers; w++) this.workers.push(this.spawn(w));
    const e: SplitOpen = { dataset: ds.name, split: ds.splitOrigin?.[split] ?? split, as: split, items: items.length };
    for (const fn of splitOpenListeners) fn(e);
  }

  private spawn(w: number): Worker {
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: this.cfg });
    this.busy[w] = 0;
    worker.on('message', (m: BatchReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (--this.busy[w] === 0) worker.unref();
      if ('x' in m) p.resolve(m.x);
      else p.reject(m.input ? new InputError(m.error) : new Error(`data worker: ${m.error}`));
    });
    worker.on('error', (e) => this.failAll(new Error(`data worker crashed: ${e.message}`)));
    worker.on('exit', (code) => { if (!this.closed) this.failAll(new Error(`data worker exited with code ${code}`)); });
    // Idle workers must not keep the process alive if a caller forgets close().
    worker.unref();
    return worker;
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  get numBatches(): number {
    return this.opts.dropLast ? Math.floor(this.items.length / this.batchSize) : Math.ceil(this.items.length / this.batchSize);
  }

  /** Item order of an epoch: the split's order, or a shuffle seeded by (seed, epoch). */
  order(epoch: number): Item[] {
    const shuffle = this.opts.shuffle ?? (this.opts.split ?? 'train') === 'train';
    return shuffle ? new Rng(this.cfg.seed, 0x5eed, epoch).shuffle(this.items.slice()) : this.items;
  }

  private render(indices: Int32Array, epoch: number, slot: number): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new Error('loader is closed'));
    if (this.workers.length === 0) return renderBatch(this.cfg, indices, epoch);
    const w = slot % this.workers.length;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.busy[w]++ === 0) this.workers[w].ref();
      this.workers[w].postMessage({ id, indices, epoch } satisfies BatchRequest);
    });
  }

  /** The batches of one epoch, in order, with up to `prefetch` rendered ahead. */
  async *epoch(epoch = 0): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const n = this.numBatches;
    const ahead = Math.max(1, this.opts.prefetch ?? 2 * Math.max(1, this.workers.length));
    const inFlight: { x: Promise<Float32Array>; y: Int32Array; rows: Int32Array }[] = [];
    let next = 0;
    const launch = () => {
      const items = order.slice(next * this.batchSize, (next + 1) * this.batchSize);
      const x = this.pixels ? this.render(Int32Array.from(items, (it) => it.index), epoch, next) : Promise.resolve(new Float32Array(0));
      x.catch(() => undefined); // surfaced when awaited; avoids an unhandled rejection meanwhile
      inFlight.push({ x, y: Int32Array.from(items, (it) => it.label), rows: Int32Array.from(items, (it) => this.position.get(it)!) });
      next++;
    };
    try {
      while (next < n && inFlight.length < ahead) launch();
      while (inFlight.length) {
        const head = inFlight.shift()!;
        const x = await head.x;
        if (next < n) launch();
        yield { x, y: head.y, shape: [head.y.length, ...this.shape], rows: head.rows };
      }
    } finally {
      // An abandoned epoch leaves renders running; let them finish into the void.
      for (const f of inFlight) f.x.catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error('loader closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

/** A loader for one split of `ds`; resolves 'dataset' normalisation from the training split. */
export async function createLoader(ds: Dataset, opts: LoaderOptions): Promise<Loader> {
  let t: ResolvedTransform;
  if (isResolved(opts.transform)) t = opts.transform;
  else {
    const stats = opts.transform.normalize === 'dataset' ? await datasetStats(ds, opts.transform.channels) : undefined;
    t = resolveTransform(opts.transform, stats);
  }
  return new Loader(ds, { ...opts, transform: t });
}
