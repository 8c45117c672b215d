/**
 * What one forward pass of a method model produced. The pass returns it (MethodModel.run) and the
 * caller owns it: the loss terms (BSS's features, AdaFilter's budget) and the evaluation statistics
 * (gate fractions) read it from there instead of from state a pass leaves in the model.
 */
import type { Tensor } from '../engine/tensor';

/** What one gated layer (AdaFilter) or block (SpotTune) chose for each example of one pass. */
export interface GateRecord {
  /** The gated layer's or block's index, in forward order. */
  layer: number;
  /** The 0/1 gates, 1 = the fine-tuned path: [B, C] per filter, [B] per block. */
  g: Tensor;
  /** The logits the gates came from; null when there are none (forced, random, a policy's choice). */
  z: Tensor | null;
}

export interface ForwardPass {
  logits: Tensor;
  /** Pooled features [N, D] the head read; absent in a pass made from cached logits. */
  features?: Tensor;
  /** A gated method's gates, one record per gated layer or block in call order; empty for the rest. */
  gates: GateRecord[];
}
