/** Accuracy, mean loss and per-class accuracy of a model on one split (and gate statistics). */
import { tidy } from '../engine/scope';
import { noGrad } from '../engine/autograd';
import { inPrecision, Precision } from '../engine/precision';
import { crossEntropy } from '../nn/functional';
import { MethodModel } from '../methods/method';
import type { GateStats } from '../methods/gate-stats';
import { Loader } from '../data/loader';
import { inputsOf, targetsOf } from './batch';
import type { SplitScore } from './run-folder';

export interface Evaluation extends SplitScore {
  gates: GateStats | null;
}

export interface EvaluateModelOptions {
  gates?: boolean;
  /** Arithmetic of the forward passes (default fp32) on the device the model is on (default cpu). */
  precision?: Precision;
  device?: string;
}

export async function evaluateModel(model: MethodModel, loader: Loader, o: EvaluateModelOptions = {}): Promise<Evaluation> {
  const classes = loader.classes;
  const wasTraining = model.training;
  model.eval();
  const stats = o.gates ? model.collectStats() : null;
  const hits = new Float64Array(classes.length), counts = new Float64Array(classes.length);
  let lossSum = 0, n = 0;
  try {
    for await (const b of loader.epoch(0)) {
      // Autocast runs the loss in fp32 as well (cross-entropy is on its fp32 list).
      const [loss, pred] = noGrad(() => tidy(() => inPrecision(o.precision ?? 'fp32', o.device ?? 'cpu', () => {
        const pass = model.run(inputsOf(b, o.device));
        stats?.update(pass, b.y);
        const logits = pass.logits;
        const l = crossEntropy(logits, targetsOf(b, o.device), { reduction: 'sum' }).item();
        return [l, logits.argmax(1).toArray()] as const;
      })));
      lossSum += loss;
      for (let i = 0; i < b.y.length; i++) {
        counts[b.y[i]]++;
        if (pred[i] === b.y[i]) hits[b.y[i]]++;
      }
      n += b.y.length;
    }
    const perClass: Record<string, number> = {};
    classes.forEach((c, i) => { if (counts[i]) perClass[c] = hits[i] / counts[i]; });
    const correct = hits.reduce((a, b) => a + b, 0);
    const gates = (stats?.result() as GateStats | undefined) ?? null;
    // Gate statistics count by label index; runs are read by people, so name the classes.
    if (gates) for (const l of gates.layers) l.perClass = Object.fromEntries(Object.entries(l.perClass).map(([k, v]) => [classes[Number(k)] ?? k, v]));
    return { acc: n ? correct / n : NaN, loss: n ? lossSum / n : NaN, examples: n, perClass, gates };
  } finally {
    model.train(wasTraining);
  }
}
