/** Independent references for the select tests: a ResNet's tap outputs computed by hand. */
import { Tensor } from '../../src/engine/tensor';
import * as F from '../../src/nn/functional';
import { ResNet } from '../../src/models/resnet';

/** The backbone's forward written out by hand: the stem's output and every block's, in order. */
export function handOutputs(m: ResNet, x: Tensor): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  let h = F.relu(m.bn1.forward(m.conv1.forward(x)));
  out.set('stem', h);
  m.layers.forEach((stage, s) => stage.namedChildren().forEach(([, b], i) => { h = b.forward(h); out.set(`layer${s + 1}.${i}`, h); }));
  return out;
}

export const pooled = (y: Tensor, pool: string) => (pool === 'mean' ? y.mean([2, 3]) : y.flatten(2).max(2)[0]);
