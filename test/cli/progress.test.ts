import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { progressReporter } from '../../src/cli/progress';

// A stream that is not a terminal: what a log file or CI sees.
function capture() {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => { lines.push(...s.split('\n').filter(Boolean)); return true; } } as unknown as NodeJS.WriteStream;
  return { lines, stream };
}

test('without a terminal, long epochs still show progress with an ETA', () => {
  const { lines, stream } = capture();
  const p = progressReporter({ stream, lineEverySeconds: 0 });
  p.onEvent({ type: 'start', dir: '/tmp/x', epochs: 2, stepsPerEpoch: 4, startEpoch: 0, startStep: 0, description: 'resnet20' });
  for (let s = 1; s <= 4; s++) p.onEvent({ type: 'step', epoch: 0, step: s, stepsPerEpoch: 4, loss: 1.5, acc: 0.5, imagesPerSec: 100, lr: 0.1 });
  p.onEvent({ type: 'epoch', epoch: 1, epochs: 2, trainLoss: 1, trainAcc: 0.5, valLoss: 1, valAcc: 0.5, best: true, seconds: 1, imagesPerSec: 100 });
  const stepLines = lines.filter((l) => / step \d\/4: /.test(l));
  assert.equal(stepLines.length, 4, lines.join('\n'));
  assert.match(stepLines[0], /^epoch 1\/2 step 1\/4: loss 1\.500 \| 100 img\/s, ETA \d+s$/);
  // The epoch line says how long the rest takes; the last epoch's line does not.
  assert.match(lines.find((l) => l.startsWith('epoch 1/2:'))!, /, ETA \d+s$/);
  p.onEvent({ type: 'epoch', epoch: 2, epochs: 2, trainLoss: 1, trainAcc: 0.5, valLoss: 1, valAcc: 0.5, best: false, seconds: 1, imagesPerSec: 100 });
  assert.doesNotMatch(lines.find((l) => l.startsWith('epoch 2/2:'))!, /ETA/);
});

test('without a terminal, step lines are rate-limited', () => {
  const { lines, stream } = capture();
  const p = progressReporter({ stream, lineEverySeconds: 3600 });
  p.onEvent({ type: 'start', dir: '/tmp/x', epochs: 1, stepsPerEpoch: 100, startEpoch: 0, startStep: 0, description: 'resnet20' });
  for (let s = 1; s <= 100; s++) p.onEvent({ type: 'step', epoch: 0, step: s, stepsPerEpoch: 100, loss: 1, acc: 0.5, imagesPerSec: 100, lr: 0.1 });
  assert.equal(lines.filter((l) => / step \d+\/100: /.test(l)).length, 0);
});
