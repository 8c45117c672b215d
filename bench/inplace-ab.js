// A/B in one process: a resnet training step with out-of-place relu/add (src/models/resnet.ts) vs in-place relu_/add_ (torchvision's inplace=True); same gradients checked first.
// usage: node bench/inplace-ab.js [arch] [batch] [rounds]   (after npx tsc -p .)
const A = require('../dist/src');
const R = require('../dist/src/models/resnet');
const F = A.F;
const { chain, release } = require('../dist/src/engine/scope');
const { SGD } = require('../dist/src/optim/sgd');
const { crossEntropy } = require('../dist/src/nn/functional');
const arch = process.argv[2] || 'resnet20', batch = +(process.argv[3] || 64), iters = +(process.argv[4] || 20);
A.setNumThreads(2); A.manualSeed(0);
const orig = R.BasicBlock.prototype.forward;
function inplace(x) {
  const out = chain(x, this.conv1, this.bn1, F.relu_, this.conv2, this.bn2);
  const s = this.downsample ? this.downsample.forward(x) : x;
  out.add_(s); release(s, x);
  return F.relu_(out);
}
const m = A.buildModel(arch, 10); m.train();
const opt = new SGD(m.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const x = A.randn([batch, 3, 32, 32]); const y = A.randint(0, 10, [batch]);
const step = () => { const t0 = process.hrtime.bigint(); A.tidy(() => { opt.zeroGrad(); const l = crossEntropy(m.forward(x), y); l.backward(); opt.step(); }); return Number(process.hrtime.bigint() - t0) / 1e6; };
// same gradients? one step each from the same weights, compare grads
const g = (f) => { R.BasicBlock.prototype.forward = f; return A.tidy(() => { opt.zeroGrad(); const l = crossEntropy(m.forward(x), y); l.backward(); return A.keep(m.parameters()[5].grad.clone()); }); };
const ga = g(orig), gb = g(inplace);
console.log('grad maxdiff', A.tidy(() => ga.sub(gb).abs().max().item()));
for (let i = 0; i < 5; i++) { R.BasicBlock.prototype.forward = orig; step(); R.BasicBlock.prototype.forward = inplace; step(); }
const ta = [], tb = [];
for (let r = 0; r < iters; r++) { R.BasicBlock.prototype.forward = orig; ta.push(step()); R.BasicBlock.prototype.forward = inplace; tb.push(step()); }
const med = (a) => a.slice().sort((p, q) => p - q)[a.length >> 1];
console.log(arch, batch, 'out-of-place ms', med(ta).toFixed(2), 'in-place ms', med(tb).toFixed(2), 'ratio', (med(ta) / med(tb)).toFixed(3));
