#!/usr/bin/env node
// SGD training steps for instruction counting (issue 16, fp32 training parity): run under
//   valgrind --tool=callgrind node bench/profile-train.js ARCH BATCH STEPS
// twice with different STEPS; (total difference) / (steps difference) is one step's instructions,
// free of start-up. The step is bench throughput's (zero_grad, forward, cross-entropy, backward,
// SGD with momentum and weight decay); bench/profile-train.py is the same through PyTorch.
'use strict';
const path = require('node:path');
const dist = path.resolve(__dirname, '..', 'dist', 'src');
const { setNumThreads } = require(path.join(dist, 'engine', 'runtime'));
const { manualSeed, randn, randint } = require(path.join(dist, 'engine', 'random'));
const { tidy } = require(path.join(dist, 'engine', 'scope'));
const { buildModel } = require(path.join(dist, 'models', 'registry'));
const { SGD } = require(path.join(dist, 'optim', 'sgd'));
const { crossEntropy } = require(path.join(dist, 'nn', 'functional'));

const [arch = 'resnet20', batch = '8', steps = '4'] = process.argv.slice(2);
setNumThreads(1);
manualSeed(0);
const model = buildModel(arch, 10);
model.train();
const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const x = randn([Number(batch), 3, 32, 32]);
const y = randint(0, 10, [Number(batch)]);
let sum = 0;
for (let i = 0; i < Number(steps); i++) {
  sum += tidy(() => {
    opt.zeroGrad();
    const loss = crossEntropy(model.forward(x), y);
    loss.backward();
    opt.step();
    return loss.item();
  });
}
console.log(JSON.stringify({ arch, batch: Number(batch), steps: Number(steps), sum }));
