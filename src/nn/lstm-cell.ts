import { Tensor } from '../engine/tensor';
import { empty } from '../engine/creation';
import { Module } from './module';
import { Parameter } from './parameter';
import { lstmCell } from './functional';
import { uniform_ } from './init';

/** torch.nn.LSTMCell: weight_ih [4H, I], weight_hh [4H, H], gates in the order i, f, g, o. */
export class LSTMCell extends Module {
  weight_ih: Parameter;
  weight_hh: Parameter;
  bias_ih: Parameter | null;
  bias_hh: Parameter | null;

  constructor(readonly inputSize: number, readonly hiddenSize: number, bias = true) {
    super();
    const k = 1 / Math.sqrt(hiddenSize);
    const u = (shape: number[]) => new Parameter(uniform_(empty(shape), -k, k));
    this.weight_ih = u([4 * hiddenSize, inputSize]);
    this.weight_hh = u([4 * hiddenSize, hiddenSize]);
    this.bias_ih = bias ? u([4 * hiddenSize]) : null;
    this.bias_hh = bias ? u([4 * hiddenSize]) : null;
  }

  /** One step; state [h, c] each [N, H]. */
  forward(x: Tensor, state: [Tensor, Tensor]): [Tensor, Tensor] {
    return lstmCell(x, state[0], state[1], this.weight_ih, this.weight_hh, this.bias_ih, this.bias_hh);
  }
}
