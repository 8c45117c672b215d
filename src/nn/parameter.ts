import { Tensor } from '../engine/tensor';

/** A trainable tensor of a Module; found by attribute, like torch.nn.Parameter. Never scope-tracked. */
export class Parameter extends Tensor {
  constructor(t: Tensor, requiresGrad = true) {
    super(Tensor.takeHandle(t), false);
    this.requiresGrad_(requiresGrad);
  }
}

/** Module state that is not trained by gradients (running statistics); saved in the state dict. */
export class Buffer extends Tensor {
  constructor(t: Tensor) {
    super(Tensor.takeHandle(t), false);
  }
}
