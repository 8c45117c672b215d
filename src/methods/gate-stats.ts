/**
 * Gate statistics at evaluation, for every gated method: AdaFilter's per-filter gates, SpotTune's
 * per-block choices, any method whose passes return GateRecords.
 */
import { Tensor } from '../engine/tensor';
import { noGrad } from '../engine/autograd';
import type { StatsCollector } from './method';
import type { ForwardPass } from './forward-pass';

export interface LayerGateStats {
  name: string;
  filters: number;
  /** Fraction of (example, filter) gates choosing the fine-tuned filter F. */
  fraction: number;
  /** Spread across examples of the per-example fraction: standard deviation, min, max. */
  exampleStd: number;
  exampleMin: number;
  exampleMax: number;
  /** Fraction of filters whose choice is not the same for every example (0: the gate ignores the input). */
  filtersVarying: number;
  /** Fraction choosing F among the examples of each class (by label). */
  perClass: Record<string, number>;
  /** Mean |z| of the gate logits (how far the gate is from its decision boundary); null without logits. */
  meanAbsLogit?: number | null;
}

export interface GateStats {
  examples: number;
  /** Over every gated layer's gates, weighted by filter count. */
  fraction: number;
  layers: LayerGateStats[];
}

interface Acc {
  ones: Float64Array; // per filter, count of examples choosing F
  sum: number;
  sumSq: number; // of per-example fractions
  min: number;
  max: number;
  classSum: Map<number, number>;
  classN: Map<number, number>;
  absLogitSum: number;
  logits: number;
}

/** Gate statistics at evaluation, accumulated in JS from each pass's hard gates. */
export class GateStatsCollector implements StatsCollector {
  readonly #acc: Acc[];
  #examples = 0;

  /** `names` of the gated layers (or blocks) and `channels`, the number of gates of each (filters, or 1 for a block). */
  constructor(private readonly names: string[], channels: number[]) {
    this.#acc = channels.map((c) => ({ ones: new Float64Array(c), sum: 0, sumSq: 0, min: Infinity, max: -Infinity, classSum: new Map(), classN: new Map(), absLogitSum: 0, logits: 0 }));
  }

  /** Adds one evaluation pass (call it while the pass's tensors are alive) with its batch's labels. */
  update(pass: ForwardPass, labels: ArrayLike<number> | Tensor): void {
    const layers = new Map(pass.gates.map((r) => [r.layer, r]));
    const ys = labels instanceof Tensor ? labels.toArray() : Array.from(labels);
    for (let l = 0; l < this.#acc.length; l++) {
      const r = layers.get(l);
      if (!r) throw new Error(`gate statistics: the pass has no gates for ${this.names[l]}`);
      const batch = r.g.size(0);
      if (batch !== ys.length) throw new Error(`gate statistics: ${ys.length} labels for a batch of ${batch}`);
      const p = { gates: r.g.toFloat32Array(), batch, channels: r.g.numel / batch, logits: r.z ? noGrad(() => r.z!.toFloat32Array()) : null };
      const a = this.#acc[l];
      if (p.logits) {
        for (const v of p.logits) a.absLogitSum += Math.abs(v);
        a.logits += p.logits.length;
      }
      for (let i = 0; i < p.batch; i++) {
        let s = 0;
        for (let c = 0; c < p.channels; c++) {
          const v = p.gates[i * p.channels + c];
          s += v;
          a.ones[c] += v;
        }
        const f = s / p.channels;
        a.sum += f; a.sumSq += f * f;
        a.min = Math.min(a.min, f); a.max = Math.max(a.max, f);
        a.classSum.set(ys[i], (a.classSum.get(ys[i]) ?? 0) + f);
        a.classN.set(ys[i], (a.classN.get(ys[i]) ?? 0) + 1);
      }
    }
    this.#examples += ys.length;
  }

  result(): GateStats {
    const n = this.#examples;
    let total = 0, weighted = 0;
    const layers = this.#acc.map((a, l): LayerGateStats => {
      const filters = a.ones.length;
      const mean = n ? a.sum / n : NaN;
      const perClass: Record<string, number> = {};
      for (const [k, s] of [...a.classSum].sort((x, y) => x[0] - y[0])) perClass[String(k)] = s / a.classN.get(k)!;
      let varying = 0;
      for (const o of a.ones) if (o > 0 && o < n) varying++;
      total += filters; weighted += mean * filters;
      return {
        name: this.names[l], filters, fraction: mean,
        exampleStd: n ? Math.sqrt(Math.max(0, a.sumSq / n - mean * mean)) : NaN,
        exampleMin: a.min, exampleMax: a.max, filtersVarying: varying / filters, perClass,
        meanAbsLogit: a.logits ? a.absLogitSum / a.logits : null,
      };
    });
    return { examples: n, fraction: weighted / total, layers };
  }
}
