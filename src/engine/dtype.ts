/** Element types, with the codes of c10::ScalarType that the addon speaks. */
export type DType = 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'float32' | 'float64' | 'bool' | 'bfloat16';

const codes: Record<DType, number> = {
  uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4, float16: 5, float32: 6, float64: 7, bool: 11, bfloat16: 15,
};
const names = new Map<number, DType>(Object.entries(codes).map(([k, v]) => [v, k as DType]));

export function dtypeCode(d: DType): number {
  const c = codes[d];
  if (c === undefined) throw new Error(`unknown dtype '${d}'`);
  return c;
}

export function dtypeName(code: number): DType {
  const n = names.get(code);
  if (n === undefined) throw new Error(`unsupported dtype code ${code}`);
  return n;
}

export function isFloating(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export type TypedArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array | Uint16Array;

/** The typed array that holds elements of a dtype (bfloat16/float16 come back as raw Uint16Array bits). */
export function typedArrayFor(d: DType, buffer: ArrayBuffer): TypedArray {
  switch (d) {
    case 'float32': return new Float32Array(buffer);
    case 'float64': return new Float64Array(buffer);
    case 'int64': return new BigInt64Array(buffer);
    case 'int32': return new Int32Array(buffer);
    case 'int16': return new Int16Array(buffer);
    case 'int8': return new Int8Array(buffer);
    case 'uint8': case 'bool': return new Uint8Array(buffer);
    case 'float16': case 'bfloat16': return new Uint16Array(buffer);
  }
}
