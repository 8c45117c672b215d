/**
 * Grouped-neuron fine-tuning, after Yoo, Fan, Boddeti, Kitani, "Efficient K-Shot Learning with
 * Regularized Deep Networks" (AAAI 2018). The filters of each convolution are clustered by how they
 * respond to the target's images, and training moves every filter of a group by the same step: the
 * average of the group's gradients. A k-shot target then fits ⌈ratio·C⌉ directions per layer
 * instead of C. What is reconstructed here (the paper's method section was not available) is listed
 * in docs/methods.md.
 */
import { aten, Tensor } from '../engine/tensor';
import { noGrad, isGradEnabled } from '../engine/autograd';
import { fromTyped, full } from '../engine/creation';
import { keep, tidy } from '../engine/scope';
import { manualSeed } from '../engine/random';
import { SGD } from '../optim/sgd';
import { SearchController, reinforce } from './gna-search';
import { Module, StateDict } from '../nn/module';
import { Buffer, Parameter } from '../nn/parameter';
import { Conv2d } from '../nn/conv';
import { conv2d } from '../nn/functional';
import { PaddedConv2d, Pads } from '../models/padded-conv';
import { Rng } from '../data/rng';
import type { Batch } from '../data/loader';
import { inputsOf } from '../train/batch';
import { InputError } from '../errors';
import { describeBackbone, GateLayers, selectSites } from './backbone';
import { Method, MethodModel, OptimSettings, ParamRole, backboneAndHead, resolveOptions } from './method';
import type { ParamGroupInput } from '../optim/optimizer';
import type { OnnxEmitter } from '../io/onnx/export';

export interface GnaOptions {
  /** Groups per layer = ⌈ratio · output channels⌉; 1 is plain fine-tuning. */
  ratio: number;
  /** Which conv layers are grouped: 'all' (stem, blocks, shortcuts, head conv), 'blocks', 'last-N'. */
  layers: GateLayers;
  /** Training images whose responses are clustered. */
  images: number;
  /** Seed of k-means++ (and of the search). */
  seed: number;
  /** 'none': `ratio` for every layer; 'rl': per-layer ratios from `searchChoices` by REINFORCE (costly, see docs). */
  search: 'none' | 'rl';
  searchChoices: number[];
  /** Controller samples; each costs a short fine-tuning run of `searchSteps` steps. */
  searchEpisodes: number;
  searchSteps: number;
  searchLr: number;
}

export const gnaDefaults: GnaOptions = {
  ratio: 0.5, layers: 'all', images: 256, seed: 0,
  search: 'none', searchChoices: [0.125, 0.25, 0.5, 1], searchEpisodes: 20, searchSteps: 20, searchLr: 0.01,
};

/**
 * Seeded k-means++ (Arthur & Vassilvitskii 2007) then Lloyd iterations on the rows of `points`
 * [m, d]; returns each row's cluster, numbered by first appearance (row order), so the labelling is
 * canonical. k ≥ m gives every row its own cluster. Same seed, same points → same answer.
 */
export function kmeans(points: Tensor, k: number, seed: number, maxIter = 100): Int32Array {
  const [m] = points.shape;
  if (!Number.isInteger(k) || k < 1) throw new InputError(`kmeans: k must be a positive integer, got ${k}`);
  if (k >= m) return Int32Array.from({ length: m }, (_, i) => i);
  return tidy(() => {
    const x = points.to('float64').contiguous();
    const sq = x.square().sum([1]);
    const distances = (c: Tensor) => sq.unsqueeze(1).sub(x.matmul(c.t()).mul(2)).add(c.square().sum([1]).unsqueeze(0)).clamp(0);
    const rng = new Rng(seed, 0x676e61);
    const chosen = [rng.int(m)];
    let nearest = distances(x.indexSelect(0, index([chosen[0]]))).data() as Float64Array;
    while (chosen.length < k) {
      // D² sampling; with every remaining point on a centre (duplicates), the first unchosen one.
      let total = 0;
      for (const v of nearest) total += v;
      let pick = -1;
      if (total > 0) {
        let r = rng.float() * total;
        for (let i = 0; i < m && pick < 0; i++) if ((r -= nearest[i]) < 0 && nearest[i] > 0) pick = i;
        if (pick < 0) pick = nearest.findIndex((v) => v > 0);
      }
      if (pick < 0) pick = [...Array(m).keys()].find((i) => !chosen.includes(i))!;
      chosen.push(pick);
      const d = distances(x.indexSelect(0, index([pick]))).data() as Float64Array;
      nearest = nearest.map((v, i) => Math.min(v, d[i]));
    }
    let centers = x.indexSelect(0, index(chosen));
    let assign = new Int32Array(m).fill(-1);
    const rows = x.data() as Float64Array, dim = x.shape[1];
    for (let it = 0; it < maxIter; it++) {
      const dist = distances(centers);
      const next = Int32Array.from(dist.argmin(1).data() as BigInt64Array, Number);
      const minDist = dist.min(1)[0].data() as Float64Array;
      const counts = new Int32Array(k);
      for (const a of next) counts[a]++;
      // An empty cluster takes the point farthest from its centre, so k clusters stay k.
      for (let c = 0; c < k; c++) {
        if (counts[c] > 0) continue;
        let far = -1;
        for (let i = 0; i < m; i++) if (counts[next[i]] > 1 && (far < 0 || minDist[i] > minDist[far])) far = i;
        counts[next[far]]--; next[far] = c; counts[c] = 1; minDist[far] = -1;
      }
      const same = next.every((a, i) => a === assign[i]);
      assign = next;
      if (same) break;
      const sums = new Float64Array(k * dim);
      for (let i = 0; i < m; i++) for (let j = 0; j < dim; j++) sums[assign[i] * dim + j] += rows[i * dim + j];
      for (let c = 0; c < k; c++) for (let j = 0; j < dim; j++) sums[c * dim + j] /= counts[c];
      centers = fromTyped(sums, 'float64', [k, dim]);
    }
    return canonical(assign);
  });
}

function index(values: number[]): Tensor {
  return fromTyped(BigInt64Array.from(values, (v) => BigInt(v)), 'int64', [values.length]);
}

/** Cluster labels renumbered 0, 1, … in order of first appearance. */
function canonical(assign: Int32Array): Int32Array {
  const seen = new Map<number, number>();
  return assign.map((a) => {
    if (!seen.has(a)) seen.set(a, seen.size);
    return seen.get(a)!;
  });
}

/**
 * A convolution whose filters move in groups. The weight W stays the parameter (state-dict names are
 * the plain conv's, and every value computed is the plain conv's), but in a training pass the
 * convolution reads W through `W.detach() + (M(W) − M(W).detach())`, M the group mean: the value
 * is W bit for bit, and the gradient that reaches W is M(∂L/∂W), every filter getting the mean
 * gradient of its group. Singleton groups make M the identity exactly, so ratio 1 is finetune.
 */
export class GroupedConv2d extends Conv2d {
  /** Group of each output channel (int64 [C]); −1 until calibrated. Saved with the weights. */
  group: Buffer;
  calibrated = false;
  /** Responses [images, C] recorded by a calibration pass. */
  capture: Float64Array[] | null = null;
  readonly pads: Pads | null;

  constructor(source: Conv2d) {
    super(source.inChannels, source.outChannels, source.kernelSize,
      { stride: source.stride, padding: source.padding, dilation: source.dilation, groups: source.groups, bias: source.bias !== null });
    // The source's own parameters, so optimiser groups and names are the plain model's.
    this.weight.dispose();
    this.bias?.dispose();
    this.weight = source.weight;
    this.bias = source.bias;
    this.training = source.training;
    this.pads = source instanceof PaddedConv2d ? source.pads : null;
    this.group = new Buffer(full([source.outChannels], -1, { dtype: 'int64' }));
  }

  /** Sets the grouping (one group id per output channel, 0-based). */
  setGroups(groups: Int32Array): void {
    if (groups.length !== this.outChannels) throw new Error(`internal: ${groups.length} group ids for ${this.outChannels} channels`);
    noGrad(() => tidy(() => this.group.copy_(index(Array.from(groups)))));
    this.calibrated = true;
  }

  /** After a state dict was loaded: calibrated when every channel has a group. */
  syncCalibrated(): void {
    this.calibrated = tidy(() => this.group.min().item()) >= 0;
  }

  /** Group ids as numbers. */
  groupIds(): number[] {
    return (this.group.toArray() as (number | bigint)[]).map(Number);
  }

  /** M(W): each filter replaced by the mean of its group's filters. */
  groupMean(): Tensor {
    const c = this.outChannels;
    const flat = this.weight.reshape(c, -1);
    const sums = aten('aten::index_add', '', [flat.mul(0), 0, this.group, flat]) as Tensor;
    const counts = (aten('aten::bincount', '', [this.group, null, c]) as Tensor).clamp(1).to(flat.dtype).unsqueeze(1);
    return sums.div(counts).indexSelect(0, this.group).reshape(...this.weight.shape);
  }

  /** Whether a pass now moves the filters in groups: a training pass that computes W's gradient. */
  groupsGradient(): boolean {
    return this.training && isGradEnabled() && this.weight.requiresGrad;
  }

  override forward(x: Tensor): Tensor {
    let w: Tensor = this.weight;
    if (this.groupsGradient()) {
      if (!this.calibrated) throw new Error('gna: the model is not calibrated; call calibrate(batches) before training (the trainer does)');
      const mean = this.groupMean();
      w = this.weight.detach().add(mean.sub(mean.detach()));
    }
    if (this.pads) {
      const [top, left, bottom, right] = this.pads;
      x = aten('aten::constant_pad_nd', '', [x, [left, right, top, bottom], 0]);
    }
    const y = conv2d(x, w, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
    if (this.capture) this.capture.push(y.mean([2, 3]).to('float64').contiguous().data() as Float64Array);
    return y;
  }
}

/** Fine-tuning with the filters of each selected conv layer moving in groups found on target data. */
export class GnaModel extends MethodModel {
  readonly layers: { name: string; conv: GroupedConv2d }[];
  #weightDecay: number | null = null;

  constructor(backbone: Module, numClasses: number, readonly options: GnaOptions) {
    super('gna', backbone, numClasses);
    this.layers = selectSites(describeBackbone(this.backbone), options.layers).map((s) => {
      const conv = new GroupedConv2d(s.conv);
      s.replace(conv, s.bn);
      return { name: s.name, conv };
    });
    this.applyTrainability();
  }

  trainableParameters(): [Parameter, ParamRole][] {
    return backboneAndHead(this);
  }

  /** The groups the optimiser's weight decay must be corrected for (see extraLoss) come from here. */
  override paramGroups(o: OptimSettings): ParamGroupInput[] {
    this.#weightDecay = o.weightDecay ?? 5e-4;
    return super.paramGroups(o);
  }

  /**
   * No loss value (exactly 0), only a gradient: SGD adds wd·W to each filter's gradient itself, which
   * differs within a group; adding wd·(M(W) − W) here makes the total M(∂L/∂W) + wd·M(W), the group
   * mean of the whole gradient, so momentum and weight decay keep the group's filters moving together.
   * For singleton groups the term is exactly 0 and the step is finetune's, bit for bit.
   */
  override extraLoss(): Tensor | null {
    const wd = this.#weightDecay;
    if (!wd) return null;
    let total: Tensor | null = null;
    for (const { conv } of this.layers) {
      // M(W) is a function of the weights, which have not moved since the forward: recomputed, not kept from it.
      if (!conv.groupsGradient()) continue;
      const term = conv.weight.mul(conv.groupMean().detach().sub(conv.weight.detach()).mul(wd)).sum();
      total = total ? total.add(term) : term;
    }
    return total ? total.sub(total.detach()) : null;
  }

  /**
   * Clusters each layer's filters: the global-average response of every output channel over the
   * first `images` images (evaluation mode: BN uses its pretrained statistics, nothing is updated),
   * standardised per channel, so two filters are close when their responses are correlated across
   * images; seeded k-means++ into ⌈ratio·C⌉ groups.
   */
  override async calibrate(batches: AsyncIterable<Batch>): Promise<void> {
    const wasTraining = this.training;
    const o = this.options;
    this.eval();
    for (const l of this.layers) l.conv.capture = [];
    // The search trains on some of these images and scores on the rest: it keeps them.
    const kept: Batch[] = [];
    let seen = 0;
    try {
      for await (const b of batches) {
        const take = Math.min(b.y.length, o.images - seen);
        if (take <= 0) break;
        tidy(() => noGrad(() => { this.forward(inputsOf(b, this.device).narrow(0, 0, take)); }));
        if (o.search === 'rl') kept.push(take === b.y.length ? b : { ...b, x: b.x.slice(0, b.x.length / b.y.length * take), y: b.y.slice(0, take), shape: [take, ...b.shape.slice(1)] as Batch['shape'] });
        seen += take;
        if (seen >= o.images) break;
      }
      if (seen < 2) throw new InputError(`gna: calibration needs at least 2 training images, got ${seen}`);
      const points = this.layers.map((l) => {
        const c = l.conv.outChannels;
        return tidy(() => {
          const parts = l.conv.capture!.map((a) => fromTyped(a, 'float64', [a.length / c, c]));
          const r = aten('aten::cat', '', [parts, 0]) as Tensor;
          const std = r.std([0], { unbiased: false, keepdim: true });
          // A filter that never varies (dead) has no pattern to correlate: it joins the zero vector.
          const z = r.sub(r.mean([0], true)).div(std.clamp(1e-12)).mul(std.gt(1e-12).to('float64'));
          return keep(z.t().contiguous());
        });
      });
      const cache = new Map<string, Int32Array>();
      const groupsAt = (i: number, ratio: number) => {
        const key = `${i}:${ratio}`;
        if (!cache.has(key)) {
          const c = this.layers[i].conv.outChannels;
          cache.set(key, kmeans(points[i], Math.min(c, Math.ceil(ratio * c - 1e-9)), o.seed + i));
        }
        return cache.get(key)!;
      };
      try {
        let ratios = this.layers.map(() => o.ratio);
        if (o.search === 'rl') ratios = this.searchRatios(kept, groupsAt);
        this.layers.forEach((l, i) => l.conv.setGroups(groupsAt(i, ratios[i])));
      } finally {
        for (const p of points) p.dispose();
      }
    } finally {
      for (const l of this.layers) l.conv.capture = null;
      this.train(wasTraining);
    }
  }

  /** The last search's episodes (search 'rl'), in memory only; the chosen grouping is in the state dict. */
  searchHistory: { ratios: number[]; reward: number }[] | null = null;

  /**
   * Per-layer ratios by REINFORCE (gna-search.ts). Reward of a choice: the calibration images split
   * by seed into two thirds for `searchSteps` SGD steps (momentum 0.9, lr `searchLr`, the run's weight
   * decay) and one third for validation accuracy; every parameter and buffer is put back after each
   * short run, so the search leaves only the grouping behind.
   */
  private searchRatios(kept: Batch[], groupsAt: (i: number, ratio: number) => Int32Array): number[] {
    const o = this.options;
    const choices = o.searchChoices;
    const images = kept.flatMap((b) => Array.from(b.y, (_, j) => ({ b, j })));
    if (images.length < 6) throw new InputError(`gna: search needs at least 6 calibration images, got ${images.length}`);
    new Rng(o.seed, 0x646576).shuffle(images);
    const cut = Math.ceil(images.length * 2 / 3);
    const toTensors = (part: typeof images) => {
      const [, c, h, w] = part[0].b.shape, px = c * h * w;
      const x = new Float32Array(part.length * px);
      part.forEach(({ b, j }, i) => x.set(b.x.subarray(j * px, (j + 1) * px), i * px));
      return { x: fromTyped(x, 'float32', [part.length, c, h, w]), y: fromTyped(BigInt64Array.from(part, ({ b, j }) => BigInt(b.y[j])), 'int64', [part.length]) };
    };
    const train = toTensors(images.slice(0, cut)), val = toTensors(images.slice(cut));
    const snapshot = new Map([...this.stateDict()].map(([k, t]) => [k, keep(noGrad(() => t.detach().clone()))]));
    const decay = this.#weightDecay;
    const controller = new SearchController(choices.length, this.layers.length);
    try {
      let episode = 0;
      const reward = (actions: number[]): number => {
        this.layers.forEach((l, i) => l.conv.setGroups(groupsAt(i, choices[actions[i]])));
        const opt = new SGD(this.paramGroups({ lr: o.searchLr, weightDecay: decay ?? 5e-4 }), { lr: o.searchLr, momentum: 0.9 });
        try {
          manualSeed(o.seed * 7919 + episode++);
          this.train();
          const n = train.y.shape[0], batch = Math.min(16, n);
          for (let s = 0; s < o.searchSteps; s++) {
            const start = (s * batch) % n, len = Math.min(batch, n - start);
            tidy(() => {
              opt.zeroGrad();
              this.loss(this.run(train.x.narrow(0, start, len)), train.y.narrow(0, start, len)).backward();
              opt.step();
            });
          }
          this.eval();
          return noGrad(() => tidy(() => this.forward(val.x).argmax(1).eq(val.y).to('float64').mean().item()));
        } finally {
          opt.dispose();
          this.loadStateDict(snapshot);
          this.#weightDecay = decay;
        }
      };
      const { best, history } = reinforce(controller, reward, { episodes: o.searchEpisodes, seed: o.seed });
      this.searchHistory = history.map((h) => ({ ratios: h.actions.map((a) => choices[a]), reward: h.reward }));
      return best.actions.map((a) => choices[a]);
    } finally {
      controller.dispose();
      for (const t of [...snapshot.values(), train.x, train.y, val.x, val.y]) t.dispose();
      for (const p of this.parameters()) p.grad = null; // the run's first step starts from no gradient
    }
  }


  /** Whether every grouped layer has its groups (calibrated, or loaded from a run). */
  get calibrated(): boolean {
    return this.layers.every((l) => l.conv.calibrated);
  }

  /** Per layer: channels and groups found (for logs and tests). */
  grouping(): { name: string; channels: number; groups: number[] }[] {
    return this.layers.map((l) => ({ name: l.name, channels: l.conv.outChannels, groups: l.conv.groupIds() }));
  }

  override loadStateDict(state: StateDict | Record<string, Tensor>, strict = true): { missing: string[]; unexpected: string[] } {
    const r = super.loadStateDict(state, strict);
    for (const l of this.layers) l.conv.syncCalibrated();
    return r;
  }

  /**
   * Evaluation convolves with W itself (the grouping shapes only the training gradient), so the
   * ONNX graph is the backbone's: each grouped conv is written as the plain Conv it computes. The
   * registry does not mark gna evaluatesAsBackbone because its state dict also holds the groups,
   * which a plain backbone file must not.
   */
  override toOnnx(e: OnnxEmitter, x: string): string {
    return e.emit(this.backbone, x);
  }
}

export const gna: Method<GnaOptions> = {
  name: 'gna',
  description: 'grouped-neuron fine-tuning (Yoo et al. 2018): filters clustered on target responses move by their group\'s mean gradient',
  defaults: gnaDefaults,
  apply(backbone, numClasses, options) {
    const o = resolveOptions('gna', gnaDefaults, options);
    if (typeof o.ratio !== 'number' || !(o.ratio > 0 && o.ratio <= 1)) throw new InputError(`gna: ratio must be a number in (0, 1], got ${JSON.stringify(o.ratio)}`);
    if (!Number.isInteger(o.images) || o.images < 2) throw new InputError(`gna: images must be an integer >= 2, got ${JSON.stringify(o.images)}`);
    if (!Number.isInteger(o.seed) || o.seed < 0) throw new InputError(`gna: seed must be an integer >= 0, got ${JSON.stringify(o.seed)}`);
    if (typeof o.layers !== 'string') throw new InputError(`gna: layers must be all, blocks or last-N, got ${JSON.stringify(o.layers)}`);
    if (o.search !== 'none' && o.search !== 'rl') throw new InputError(`gna: search must be none or rl, got ${JSON.stringify(o.search)}`);
    // From the CLI a list arrives as "0.25,0.5".
    const choices = typeof o.searchChoices === 'string' ? (o.searchChoices as string).split(',').map(Number) : o.searchChoices;
    if (!Array.isArray(choices) || choices.length < 1 || !choices.every((r) => typeof r === 'number' && r > 0 && r <= 1)) {
      throw new InputError(`gna: searchChoices must be ratios in (0, 1], got ${JSON.stringify(o.searchChoices)}`);
    }
    o.searchChoices = choices;
    for (const k of ['searchEpisodes', 'searchSteps'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new InputError(`gna: ${k} must be an integer >= 1, got ${JSON.stringify(o[k])}`);
    }
    if (typeof o.searchLr !== 'number' || !(o.searchLr > 0)) throw new InputError(`gna: searchLr must be a positive number, got ${JSON.stringify(o.searchLr)}`);
    return new GnaModel(backbone, numClasses, o);
  },
};
