#!/usr/bin/env node
// Eval-mode forward passes for instruction counting (issue 16): run under
//   valgrind --tool=callgrind node bench/profile-forward.js ARCH BATCH PASSES
// twice with different PASSES; the difference of the totals divided by the difference of the
// passes is one forward pass's instructions, free of start-up. bench/profile-forward.py is the
// same through PyTorch. One thread, no timing: counts are what is stable on a shared machine.
// FOLD_BN=1 runs each pass with BN folded into the convolutions (nn/fold-bn.ts).
'use strict';
const path = require('node:path');
const dist = path.resolve(__dirname, '..', 'dist', 'src');
const { setNumThreads } = require(path.join(dist, 'engine', 'runtime'));
const { manualSeed, randn } = require(path.join(dist, 'engine', 'random'));
const { noGrad } = require(path.join(dist, 'engine', 'autograd'));
const { tidy } = require(path.join(dist, 'engine', 'scope'));
const { buildModel } = require(path.join(dist, 'models', 'registry'));
const { withFoldedBatchNorm } = require(path.join(dist, 'nn', 'fold-bn'));

const [arch = 'resnet20', batch = '32', passes = '3', size = '32'] = process.argv.slice(2);
setNumThreads(1);
manualSeed(0);
const model = buildModel(arch, 10);
model.eval();
const x = randn([Number(batch), 3, Number(size), Number(size)]);
let sum = 0;
for (let i = 0; i < Number(passes); i++) {
  const pass = () => model.forward(x).sum().item();
  sum += noGrad(() => tidy(() => (process.env.FOLD_BN === '1' ? withFoldedBatchNorm(model, pass) : pass())));
}
console.log(JSON.stringify({ arch, batch: Number(batch), passes: Number(passes), foldBn: process.env.FOLD_BN === '1', sum }));
