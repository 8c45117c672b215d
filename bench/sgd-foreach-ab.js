// opt.step() alone, alternating in one process: SGD parameter by parameter (src/optim/sgd.ts) vs
// the same update with libtorch's _foreach_ list operators (torch.optim.SGD's foreach=True form).
// usage: node bench/sgd-foreach-ab.js [arch] [steps]   (after npx tsc -p .)
const A = require('../dist/src');
const { aten, atenVoid } = require('../dist/src/engine/tensor');
const { tidy, keep } = require('../dist/src/engine/scope');
const [arch, steps] = [process.argv[2] || 'resnet20', +(process.argv[3] || 200)];
const [lr, momentum, wd] = [0.01, 0.9, 5e-4];
A.setNumThreads(2); A.manualSeed(0);
const ps = A.buildModel(arch, 10).parameters();
for (const p of ps) p.grad = A.randn(p.shape);
const opt = new A.SGD(ps, { lr, momentum, weightDecay: wd });
let bufs = null;
function foreachStep() {
  A.noGrad(() => tidy(() => {
    const d = aten('aten::_foreach_add', 'List', [ps.map((p) => p.grad), ps], { alpha: wd });
    if (!bufs) bufs = d.map((t) => keep(t.clone()));
    else {
      atenVoid('aten::_foreach_mul_', 'Scalar', [bufs, momentum]);
      atenVoid('aten::_foreach_add_', 'List', [bufs, d], { alpha: 1 });
    }
    atenVoid('aten::_foreach_add_', 'List', [ps, bufs], { alpha: -lr });
  }));
}
const time = (f) => { const t0 = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t0) / 1e6; };
for (let i = 0; i < 20; i++) { opt.step(); foreachStep(); }
const a = [], b = [];
for (let i = 0; i < steps; i++) { a.push(time(() => opt.step())); b.push(time(foreachStep)); }
const med = (x) => x.slice().sort((p, q) => p - q)[x.length >> 1];
console.log(JSON.stringify({ arch, params: ps.length, per_parameter_ms: +med(a).toFixed(3), foreach_ms: +med(b).toFixed(3) }));
