/**
 * Block outputs of a model on a stream of images, for comparing representations. A model is a run
 * folder (its best weights, whatever the method) or a backbone spec (`default`, an architecture, a
 * weights file), so "pretrained vs fine-tuned" is one comparison.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../engine/tensor';
import { noGrad } from '../engine/autograd';
import { tidy } from '../engine/scope';
import { Module } from '../nn/module';
import type { Batch } from '../data/loader';
import type { Dataset } from '../data/dataset';
import type { ResolvedTransform } from '../data/transforms';
import { InputError } from '../errors';
import { loadRun } from '../train/load-run';
import { RUN_FILES } from '../train/run-folder';
import { inputTransform, openBackbone, rebuildArchitecture } from '../train/backbones';
import { inputsOf } from '../train/batch';

/** A model ready for feature extraction: evaluation mode, with its block names and preprocessing. */
export interface FeatureModel {
  /** What the user named (a run folder or a backbone spec) and one line on what it is. */
  spec: string;
  description: string;
  /** The module whose forward runs an image batch (a method model or a bare backbone). */
  model: Module;
  /** The module the block names are relative to (the backbone inside a method model). */
  root: Module;
  /** Block output names in forward order (`layer1.0`, `features.3`). */
  blocks: string[];
  transform: ResolvedTransform;
  dispose(): void;
}

export function isRunFolder(spec: string): boolean {
  return fs.existsSync(path.join(spec, RUN_FILES.config));
}

/**
 * Opens a run folder or a backbone spec. `ds` sizes a backbone's (unused) classifier and gives the
 * statistics of weights that normalise by the target's data.
 * A run's block names come from a fresh build of its architecture: a method may have replaced
 * layers inside the blocks (AdaFilter's gated convolutions) or the blocks themselves (SpotTune),
 * so the adapted model can no longer describe itself, but its blocks keep their names.
 */
export async function openFeatureModel(spec: string, ds: Dataset): Promise<FeatureModel> {
  if (isRunFolder(spec)) {
    const r = loadRun(spec);
    const c = r.config;
    const fresh = rebuildArchitecture(c.arch, c.classes.length, c.archOptions);
    const blocks = fresh.blocks().map((b) => b.name);
    fresh.dispose();
    return {
      spec, description: `run ${spec} (${c.method} on ${c.data}, ${c.arch})`, model: r.model, root: r.model.backbone, blocks,
      transform: r.transform,
      dispose: () => r.model.dispose(),
    };
  }
  const bb = openBackbone(spec, ds.classes.length);
  bb.model.eval();
  return {
    spec, description: bb.description, model: bb.model, root: bb.model, blocks: bb.model.blocks().map((b) => b.name),
    transform: await inputTransform(bb.input, ds), dispose: () => bb.model.dispose(),
  };
}

/**
 * How a block output [N, C, H, W] becomes a representation per image: `mean` averages over H×W
 * (C features, all rows kept); `flat` keeps every position (C·H·W features), of which only each
 * batch's Gram matrix is kept.
 */
export type Pooling = 'mean' | 'flat';

/** One layer: `mean`: rows × dim features, row-major, float64; `flat`: one n×n Gram matrix per batch. */
export interface LayerFeatures {
  name: string;
  dim: number;
  data: Float64Array;
  grams: { n: number; data: Float64Array }[];
}

export interface Features {
  rows: number;
  /** Labels of the rows (to check that two models saw the same images in the same order). */
  labels: Int32Array;
  layers: LayerFeatures[];
}

/** The module at dotted path `name` under `root`. */
function moduleAt(root: Module, name: string): Module {
  const m = root.namedModules().find(([n]) => n === name)?.[1];
  if (!m) throw new InputError(`no layer '${name}' in this model`);
  return m;
}

/**
 * Runs `model` (evaluation mode, no gradient) on the first `images` images of `batches` and keeps
 * each named block's output, pooled by `pool`: [images, channels] per layer. The blocks'
 * own forward is wrapped while this runs, so any method's model works unchanged.
 */
export async function blockFeatures(m: FeatureModel, names: string[], batches: AsyncIterable<Batch>, images: number, pool: Pooling = 'mean'): Promise<Features> {
  const taps = names.map((n) => ({ name: n, module: moduleAt(m.root, n) }));
  const rows: Float64Array[][] = taps.map(() => []);
  const grams: { n: number; data: Float64Array }[][] = taps.map(() => []);
  const dims = taps.map(() => 0);
  const labels: number[] = [];
  const originals = taps.map((t) => Object.getOwnPropertyDescriptor(t.module, 'forward'));
  let take = 0;
  taps.forEach((t, i) => {
    const forward = t.module.forward.bind(t.module);
    (t.module as { forward: (x: Tensor) => Tensor }).forward = (x: Tensor) => {
      const y = forward(x);
      if (y.ndim !== 4) throw new Error(`internal: block ${t.name} gave a ${y.ndim}-d output`);
      if (pool === 'flat') {
        const f = y.narrow(0, 0, take).reshape(take, -1).to('float64');
        dims[i] = f.shape[1];
        grams[i].push({ n: take, data: f.matmul(f.t()).contiguous().data() as Float64Array });
        rows[i].push(new Float64Array(0));
        return y;
      }
      const pooled = y.mean([2, 3]).to('float64').narrow(0, 0, take);
      dims[i] = pooled.shape[1];
      rows[i].push(pooled.contiguous().data() as Float64Array);
      return y;
    };
  });
  try {
    m.model.eval();
    for await (const b of batches) {
      take = Math.min(b.y.length, images - labels.length);
      if (take <= 0) break;
      const before = rows.map((r) => r.length);
      tidy(() => noGrad(() => { m.model.forward(inputsOf(b)); }));
      const missed = taps.filter((_, i) => rows[i].length !== before[i] + 1);
      if (missed.length) throw new InputError(`block ${missed[0].name} did not run exactly once per forward pass in ${m.spec}; it cannot be compared`);
      for (let i = 0; i < take; i++) labels.push(b.y[i]);
      if (labels.length >= images) break;
    }
  } finally {
    taps.forEach((t, i) => {
      const d = originals[i];
      if (d) Object.defineProperty(t.module, 'forward', d);
      else delete (t.module as { forward?: unknown }).forward;
    });
  }
  const layers = taps.map((t, i) => {
    const data = new Float64Array(pool === 'flat' ? 0 : labels.length * dims[i]);
    let at = 0;
    for (const r of rows[i]) { data.set(r, at); at += r.length; }
    return { name: t.name, dim: dims[i], data, grams: grams[i] };
  });
  return { rows: labels.length, labels: Int32Array.from(labels), layers };
}
