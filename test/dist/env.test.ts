/** workerEnv: torchrun's variables, read strictly (no addon needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { workerEnv } from '../../src/dist/env';
import { InputError } from '../../src/errors';

const TORCHRUN_ENV = { RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '10.0.0.1', MASTER_PORT: '29500' };

test('no launcher variables: not a worker', () => {
  assert.equal(workerEnv({ PATH: '/usr/bin' }), null);
});

test('our launcher\'s variables: rank, sizes, master; rank 0 serves the store', () => {
  assert.deepEqual(workerEnv(TORCHRUN_ENV), {
    rank: 1, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: '10.0.0.1', masterPort: 29500, agentStorePrefix: null,
  });
});

test('torchrun\'s agent store: every rank a client, under the restart attempt\'s prefix', () => {
  const env = workerEnv({ ...TORCHRUN_ENV, TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2' });
  assert.equal(env?.agentStorePrefix, '/worker/attempt_2');
});

test('a worker started by hand may leave out LOCAL_*', () => {
  const env = workerEnv({ RANK: '0', WORLD_SIZE: '1', MASTER_ADDR: 'localhost', MASTER_PORT: '1234' });
  assert.deepEqual([env?.localRank, env?.localWorldSize], [0, 1]);
});

test('partial or inconsistent variables: an InputError naming the variable', () => {
  assert.throws(() => workerEnv({ RANK: '0', WORLD_SIZE: '2' }), (e: unknown) => e instanceof InputError && /MASTER_ADDR, MASTER_PORT missing/.test(e.message));
  assert.throws(() => workerEnv({ ...TORCHRUN_ENV, RANK: '4' }), (e: unknown) => e instanceof InputError && /RANK="4" must be an integer in \[0, 3\]/.test(e.message));
  assert.throws(() => workerEnv({ ...TORCHRUN_ENV, MASTER_PORT: '70000' }), (e: unknown) => e instanceof InputError && /MASTER_PORT/.test(e.message));
  assert.throws(() => workerEnv({ ...TORCHRUN_ENV, WORLD_SIZE: 'two' }), (e: unknown) => e instanceof InputError && /WORLD_SIZE="two"/.test(e.message));
});
