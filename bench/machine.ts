import * as os from 'node:os';
import { getNumThreads, torchVersion } from '../src/engine/runtime';

/** What every published figure carries: when, and on what. */
export function machineInfo() {
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    libtorch: torchVersion(),
    threads: getNumThreads(),
    node: process.version,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}
