/**
 * The ONNX graph under construction: nodes and initializers with unique value names. Module
 * emitters (io/onnx/export.ts and each class's own toOnnx) add to it.
 */
import { Tensor } from '../../engine/tensor';
import { noGrad } from '../../engine/autograd';
import { AttrValue, DataType, NodeSpec, TensorSpec } from './onnx-model';

/** Builds the node list and initializers; value names are unique. */
export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];
  private readonly used = new Set<string>();
  private readonly tensorNames = new Map<Tensor, string>();
  private readonly constNames = new Map<string, string>();

  constructor(private readonly names: Map<Tensor, string>) {}

  fresh(base: string): string {
    let n = base, i = 1;
    while (this.used.has(n)) n = `${base}_${i++}`;
    this.used.add(n);
    return n;
  }

  /** A parameter or buffer as an initializer, under its state-dict name (once, however often used). */
  param(t: Tensor, fallback: string): string {
    const known = this.tensorNames.get(t);
    if (known) return known;
    const name = this.fresh(this.names.get(t) ?? fallback);
    const data = noGrad(() => t.toFloat32Array());
    this.initializers.push({ name, dims: t.shape, dataType: DataType.FLOAT, raw: bytes(data) });
    this.tensorNames.set(t, name);
    return name;
  }

  floats(base: string, values: number[], dims = [values.length]): string {
    const key = `f:${dims}:${values}`;
    const known = this.constNames.get(key);
    if (known) return known;
    const name = this.fresh(base);
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, raw: bytes(Float32Array.from(values)) });
    this.constNames.set(key, name);
    return name;
  }

  ints(base: string, values: number[], dims = [values.length]): string {
    const key = `i:${dims}:${values}`;
    const known = this.constNames.get(key);
    if (known) return known;
    const name = this.fresh(base);
    this.initializers.push({ name, dims, dataType: DataType.INT64, raw: bytes(BigInt64Array.from(values.map(BigInt))) });
    this.constNames.set(key, name);
    return name;
  }

  node(opType: string, inputs: string[], base: string, attrs?: Record<string, AttrValue>, outputs = 1): string[] {
    const outs = Array.from({ length: outputs }, (_, i) => this.fresh(outputs === 1 ? base : `${base}_${i}`));
    this.nodes.push({ opType, inputs, outputs: outs, name: this.fresh(`${opType}:${base}`), attrs });
    return outs;
  }

  one(opType: string, inputs: string[], base: string, attrs?: Record<string, AttrValue>): string {
    return this.node(opType, inputs, base, attrs)[0];
  }
}

function bytes(a: Float32Array | BigInt64Array): Uint8Array {
  // The engine and ONNX both store little-endian; so does every platform Node runs on here.
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export const ints = (v: number[]): AttrValue => ({ kind: 'ints', v });
export const int = (v: number): AttrValue => ({ kind: 'int', v });
