import * as os from 'node:os';
import { getNumThreads, torchVersion } from '../src/engine/runtime';
import { cpuBf16 } from '../src/engine/device';

/** What every published figure carries: when, and on what. */
export function machineInfo() {
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    // The model name does not tell an AMX Xeon from an older one ('Intel(R) Xeon(R) Processor'), and bf16 figures depend on it.
    cpu_bf16: cpuBf16(),
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
