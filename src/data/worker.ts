/**
 * Worker-thread entry: receives the pipeline config once, then batch requests, and answers each
 * with the float32 batch (transferred, not copied) or the error message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PipelineConfig, renderBatch } from './pipeline';
import { InputError } from '../errors';

export interface BatchRequest { id: number; indices: Int32Array; epoch: number }
export type BatchReply =
  | { id: number; x: Float32Array }
  | { id: number; error: string; input: boolean };

if (parentPort) {
  const port = parentPort;
  const cfg = workerData as PipelineConfig;
  port.on('message', (req: BatchRequest) => {
    renderBatch(cfg, req.indices, req.epoch).then(
      (x) => port.postMessage({ id: req.id, x } satisfies BatchReply, [x.buffer as ArrayBuffer]),
      (e: unknown) => port.postMessage({
        id: req.id, error: e instanceof Error ? e.message : String(e), input: e instanceof InputError,
      } satisfies BatchReply),
    );
  });
}
