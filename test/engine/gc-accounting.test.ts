import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import { setImmediate as turn } from 'node:timers/promises';
import { full } from '../../src/engine/creation';
import { tidy } from '../../src/engine/scope';
import { liveTensors, Tensor } from '../../src/engine/tensor';

// What V8 is told about native memory (engine/tensor.ts, native/src/tensor_handle.cc): the bytes of
// tensors no scope owns, so that forgotten ones are collected under memory pressure, and nothing for
// tensors a tidy() scope holds, which no collection could free before the scope does.

const MB = 2 ** 20;
const floats = (mb: number) => (mb * MB) / 4;

/** The V8 collections other than scavenges (mark-compact, incremental marking) that start while fn runs. */
async function majorGcsDuring(fn: () => void): Promise<number> {
  const starts: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as unknown as { detail: { kind: number } }).detail.kind !== constants.NODE_PERFORMANCE_GC_MINOR) starts.push(e.startTime);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  // GC entries are delivered after the event loop turns.
  await new Promise((r) => setTimeout(r, 50));
  observer.disconnect();
  return starts.filter((s) => s >= t0 && s <= t1).length;
}

test('activations a tidy() scope holds start no major GC: 8 passes holding 160 MB each', async () => {
  const pass = () => tidy(() => {
    // A forward pass's chain: every intermediate stays alive until the scope closes.
    let x = full([floats(4)], 1);
    for (let i = 0; i < 40; i++) x = x.add(1);
    return x.sum().item();
  });
  pass();
  const before = liveTensors();
  // Before the scope-aware accounting, each pass crossed V8's 64 MB external soft limit: 4 to 8 major GCs here.
  const majors = await majorGcsDuring(() => { for (let i = 0; i < 8; i++) assert.equal(pass(), 41 * floats(4)); });
  assert.equal(majors, 0);
  assert.equal(liveTensors(), before);
});

test('tensors no scope owns are still collected when forgotten: made outside any scope, or returned from the outermost tidy()', async () => {
  const before = liveTensors();
  const made = 300;
  let mostAlive = 0;
  for (let i = 0; i < made; i++) {
    // 2 MB each, never disposed: 600 MB if nothing collected them.
    const t: Tensor = i % 2 === 0 ? full([floats(2)], i) : tidy(() => full([floats(2)], 0).add(i));
    assert.equal(t.isDisposed, false);
    // Finalizers run between turns of the event loop.
    await turn();
    mostAlive = Math.max(mostAlive, liveTensors() - before);
  }
  // Counted in V8's external memory, they start collections once they pass its 64 MB limit: measured
  // at most 41 alive at once (39 before the scope-aware accounting; all 300 when nothing is counted).
  assert.ok(mostAlive < 100, `up to ${mostAlive} of ${made} forgotten 2 MB tensors alive at once`);
});
