/** Parameters held in an array (torch.nn.ParameterList) are the module's parameters like any other. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor';
import { full, zeros } from '../../src/engine/creation';
import { Module } from '../../src/nn/module';
import { noGrad } from '../../src/engine/autograd';
import { Buffer, Parameter } from '../../src/nn/parameter';
import { applyMethod } from '../../src/methods/registry';
import { fakePretrained } from '../methods/helpers';

class WithArrays extends Module {
  logits = [new Parameter(full([2], 1)), new Parameter(full([3], 2))];
  counts = [new Buffer(zeros([1], { dtype: 'int64' }))];
  forward(x: Tensor): Tensor { return x; }
}

test('parameters and buffers in arrays are named by index, in the state dict, loaded and moved', () => {
  const m = new WithArrays();
  assert.deepEqual(m.namedParameters().map(([k, p]) => [k, p.shape]), [['logits.0', [2]], ['logits.1', [3]]]);
  assert.deepEqual([...m.stateDict().keys()], ['logits.0', 'logits.1', 'counts.0']);
  const other = new WithArrays();
  noGrad(() => other.logits[1].fill_(7));
  m.loadStateDict(other.stateDict());
  assert.deepEqual(m.logits[1].toArray(), [7, 7, 7]);
  m.to('float64');
  assert.deepEqual(m.logits.map((p) => p.dtype), ['float64', 'float64']);
  assert.equal(m.counts[0].dtype, 'int64', 'integer buffers keep their dtype');
  m.dispose(); other.dispose();
});

test("adafilter-static's per-layer gate logits are trained and saved (they were invisible to parameters())", () => {
  const m = applyMethod('adafilter-static', fakePretrained(0), 4);
  try {
    const gateKeys = [...m.stateDict().keys()].filter((k) => k.startsWith('gate.logits.'));
    assert.ok(gateKeys.length > 0, 'in the state dict');
    const trained = new Set(m.paramGroups({ lr: 0.1 }).flatMap((g) => g.params));
    const logits = m.namedParameters().filter(([k]) => k.startsWith('gate.logits.')).map(([, p]) => p);
    assert.equal(logits.length, gateKeys.length);
    for (const p of logits) assert.ok(trained.has(p) && p.requiresGrad, 'in an optimizer group, with gradients');
  } finally {
    m.dispose();
  }
});
