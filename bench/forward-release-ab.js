// A/B in one process: model.forward as it is vs the same with a tidy() around each block (block outputs released too).
// usage: node bench/forward-release-ab.js [arch] [fp32|bf16] [batch] [rounds]   (after npx tsc -p .)
const A = require('../dist/src');
const { inPrecision } = require('../dist/src/engine/precision');
const [arch, prec, batch, iters] = [process.argv[2] || 'resnet20', process.argv[3] || 'bf16', +(process.argv[4] || 64), +(process.argv[5] || 20)];
A.setNumThreads(2); A.manualSeed(0);
const m = A.buildModel(arch, 10); m.eval();
const x = A.randn([batch, 3, 32, 32]);
const F = A.F;
function eager(x) {
  let h = A.tidy(() => F.relu(m.bn1.forward(m.conv1.forward(x))));
  for (const l of m.layers) for (const b of l.layers) { const n = A.tidy(() => b.forward(h)); h.dispose(); h = n; }
  return m.fc.forward(F.globalAvgPool(h));
}
const run = (f) => { const t0 = process.hrtime.bigint(); A.noGrad(() => A.tidy(() => { inPrecision(prec, 'cpu', () => f(x)).sum().item(); })); return Number(process.hrtime.bigint() - t0) / 1e6; };
const base = (x) => m.forward(x);
// check same output
A.noGrad(() => A.tidy(() => { const a = inPrecision(prec, 'cpu', () => base(x)); const b = inPrecision(prec, 'cpu', () => eager(x)); console.log('maxdiff', a.sub(b).abs().max().item()); }));
for (let i = 0; i < 5; i++) { run(base); run(eager); }
const ta = [], tb = [];
for (let r = 0; r < iters; r++) { ta.push(run(base)); tb.push(run(eager)); }
const med = (a) => a.slice().sort((p, q) => p - q)[a.length >> 1];
console.log(arch, prec, batch, 'held ms', med(ta).toFixed(2), 'eager ms', med(tb).toFixed(2), 'ratio', (med(ta) / med(tb)).toFixed(3));
