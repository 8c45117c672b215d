/** gna's search (search 'rl'): the REINFORCE controller on a known reward, and the search inside calibration. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor';
import { manualSeed, randn } from '../../src/engine/random';
import { setNumThreads } from '../../src/engine/runtime';
import { applyMethod } from '../../src/methods';
import { GnaModel } from '../../src/methods/gna';
import { SearchController, reinforce } from '../../src/methods/gna-search';
import type { Batch } from '../../src/data/loader';
import { InputError } from '../../src/errors';
import { fakePretrained, snapshot } from './helpers';

setNumThreads(1);

test('REINFORCE learns the per-layer choices a known reward prefers, deterministically per seed', () => {
  const target = [2, 0, 3];
  const reward = (a: number[]) => a.filter((v, i) => v === target[i]).length / target.length;
  const run = (seed: number) => {
    manualSeed(seed);
    const c = new SearchController(4, 3);
    const r = reinforce(c, reward, { episodes: 150, seed });
    const greedy = c.sample(null);
    c.dispose();
    return { r, greedy };
  };
  const a = run(1), b = run(1);
  assert.deepEqual(a.greedy, target, `the policy's most likely choices ${a.greedy}`);
  assert.deepEqual(a.r.best.actions, target);
  assert.deepEqual(a.r.history, b.r.history, 'same seed, same episodes');
  const early = a.r.history.slice(0, 20).reduce((s, h) => s + h.reward, 0) / 20;
  const late = a.r.history.slice(-20).reduce((s, h) => s + h.reward, 0) / 20;
  assert.ok(late > early + 0.3, `reward rises: ${early} → ${late}`);
});

async function* labelled(x: Tensor, classes: number, size: number): AsyncGenerator<Batch> {
  const data = x.contiguous().data() as Float32Array, [n, c, h, w] = x.shape;
  for (let i = 0; i < n; i += size) {
    const k = Math.min(size, n - i);
    yield { x: data.slice(i * c * h * w, (i + k) * c * h * w), y: Int32Array.from({ length: k }, (_, j) => (i + j) % classes), shape: [k, c, h, w] };
  }
}

test("search 'rl' in calibration: per-layer ratios from the choices, the weights left as they were, the same seed the same grouping", async () => {
  manualSeed(40);
  const x = randn([24, 3, 16, 16]);
  const build = () => applyMethod('gna', fakePretrained(9), 5, { search: 'rl', searchChoices: '0.25,1', searchEpisodes: 3, searchSteps: 2, layers: 'last-4' }) as GnaModel;
  const g = build();
  g.paramGroups({ lr: 0.01, weightDecay: 5e-4 });
  const before = snapshot(g);
  await g.calibrate(labelled(x, 5, 8));
  assert.equal(g.searchHistory!.length, 3);
  for (const h of g.searchHistory!) assert.ok(h.ratios.every((r) => r === 0.25 || r === 1) && h.reward >= 0 && h.reward <= 1);
  const after = snapshot(g);
  for (const [k, v] of before) if (!k.endsWith('.group')) assert.deepEqual(after.get(k), v, `${k} restored after the short runs`);
  assert.ok(g.parameters().every((p) => p.grad === null), 'no gradient left behind');
  const best = g.searchHistory!.reduce((b, h) => (h.reward > b.reward ? h : b));
  g.grouping().forEach((l, i) => assert.equal(new Set(l.groups).size, Math.ceil(best.ratios[i] * l.channels), `${l.name}: the best episode's ratio`));
  const again = build();
  again.paramGroups({ lr: 0.01, weightDecay: 5e-4 });
  await again.calibrate(labelled(x, 5, 8));
  assert.deepEqual(again.grouping(), g.grouping());
  assert.deepEqual(again.searchHistory, g.searchHistory);
  g.dispose(); again.dispose();
});

test('search options: bad values are InputErrors', () => {
  for (const o of [{ search: 'grid' }, { searchChoices: [0, 0.5] }, { searchChoices: 'a,b' }, { searchEpisodes: 0 }, { searchSteps: 1.5 }, { searchLr: -1 }]) {
    assert.throws(() => applyMethod('gna', fakePretrained(1), 5, o), InputError, JSON.stringify(o));
  }
});
