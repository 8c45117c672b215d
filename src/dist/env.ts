import { InputError } from '../errors';

/** torchrun's contract: what a worker process learns from its environment. */
export interface WorkerEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  /**
   * Set under torchrun: its agent already serves the rendezvous store on MASTER_PORT, so every
   * rank connects as a client, under the key prefix of the agent's current restart attempt.
   */
  agentStorePrefix: string | null;
}

const KEYS = ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'] as const;

function integer(env: NodeJS.ProcessEnv, key: string, min: number, max: number): number {
  const s = env[key] ?? '';
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!(n >= min && n <= max)) throw new InputError(`environment: ${key}=${JSON.stringify(s)} must be an integer in [${min}, ${max}]`);
  return n;
}

/**
 * The worker environment a launcher (ours or torchrun) set, or null when this process was not
 * started as a worker. Partly set or inconsistent variables are an InputError naming the variable.
 */
export function workerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv | null {
  const present = KEYS.filter((k) => env[k] !== undefined && env[k] !== '');
  if (present.length === 0) return null;
  // LOCAL_* are optional in torchrun's contract for a worker started by hand.
  const required = ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'];
  const missing = required.filter((k) => !present.includes(k as typeof KEYS[number]));
  if (missing.length) throw new InputError(`environment: ${present.join(', ')} set but ${missing.join(', ')} missing (a distributed worker needs all of ${required.join(', ')})`);
  const worldSize = integer(env, 'WORLD_SIZE', 1, 1 << 20);
  const rank = integer(env, 'RANK', 0, worldSize - 1);
  const localWorldSize = env.LOCAL_WORLD_SIZE ? integer(env, 'LOCAL_WORLD_SIZE', 1, worldSize) : 1;
  const localRank = env.LOCAL_RANK ? integer(env, 'LOCAL_RANK', 0, localWorldSize - 1) : 0;
  const masterAddr = env.MASTER_ADDR as string;
  const masterPort = integer(env, 'MASTER_PORT', 1, 65535);
  const agentStorePrefix = env.TORCHELASTIC_USE_AGENT_STORE === 'True'
    ? `/worker/attempt_${env.TORCHELASTIC_RESTART_COUNT || '0'}` : null;
  return { rank, worldSize, localRank, localWorldSize, masterAddr, masterPort, agentStorePrefix };
}
