import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn } from '../../src/engine/random';
import { liveTensors } from '../../src/engine/tensor';
import { tidy } from '../../src/engine/scope';
import { Parameter } from '../../src/nn/parameter';
import { SGD } from '../../src/optim/sgd';
import { AdamW } from '../../src/optim/adamw';

test('optimizer.dispose() frees its state tensors', () => {
  for (const make of [(p: Parameter[]) => new SGD(p, { lr: 0.1, momentum: 0.9 }), (p: Parameter[]) => new AdamW(p)]) {
    const p = new Parameter(randn([4]));
    const opt = make([p]);
    tidy(() => p.mul(2).sum().backward());
    p.grad = null;
    const before = liveTensors();
    tidy(() => p.mul(2).sum().backward());
    opt.step();
    p.grad = null;
    assert.ok(liveTensors() > before, 'the step made state tensors');
    opt.dispose();
    assert.equal(liveTensors(), before);
    p.dispose();
  }
});
