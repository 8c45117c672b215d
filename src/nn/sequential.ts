import { Tensor } from '../engine/tensor';
import { Module } from './module';

/** Applies its modules in order; children are named "0", "1", … as in PyTorch. */
export class Sequential extends Module {
  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => ((this as unknown as Record<string, Module>)[String(i)] = m));
  }

  get layers(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  forward(x: Tensor): Tensor {
    let out = x;
    for (const m of this.layers) out = m.forward(out);
    return out;
  }
}
