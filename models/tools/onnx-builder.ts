/**
 * A tiny ONNX graph writer, used only to generate the small test models that stand in for
 * reference weights we cannot ship (ResNet-50, Faster R-CNN, DeepLabV3, Mask R-CNN, BERT).
 * The generated files are real ONNX models: onnxruntime loads and runs them like any export.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type ElemType = 'float32' | 'int64' | 'int32' | 'bool';
export type Dim = number | string;
/** Plain numbers become INT attributes when integral; wrap in { float } to force FLOAT. */
export type AttrValue = number | string | number[] | { float: number } | { floats: number[] } | { tensor: TensorInit };

export interface TensorInit {
  type: ElemType;
  dims: number[];
  data: ArrayLike<number> | ArrayLike<bigint>;
}

const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
};

function tensorProto(name: string, t: TensorInit): onnxProto.onnx.ITensorProto {
  const base = { name, dims: t.dims, dataType: ELEM[t.type] };
  switch (t.type) {
    case 'float32':
      return { ...base, rawData: new Uint8Array(Float32Array.from(t.data as ArrayLike<number>).buffer) };
    case 'int64': {
      const values = Array.from(t.data as ArrayLike<number | bigint>, (v) => BigInt(v));
      return { ...base, rawData: new Uint8Array(BigInt64Array.from(values).buffer) };
    }
    case 'int32':
      return { ...base, rawData: new Uint8Array(Int32Array.from(t.data as ArrayLike<number>).buffer) };
    case 'bool':
      return { ...base, rawData: Uint8Array.from(t.data as ArrayLike<number>, (v) => (v ? 1 : 0)) };
  }
}

function valueInfo(name: string, type: ElemType, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  }
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  return { name, type: T.TENSOR, t: tensorProto(name, value.tensor) };
}

export class OnnxGraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(private readonly graphName: string) {}

  input(name: string, type: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: ElemType, dims: Dim[]): string {
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Adds a constant weight tensor and returns its name. */
  constant(type: ElemType, dims: number[], data: TensorInit['data'], name = this.fresh('const')): string {
    this.initializers.push(tensorProto(name, { type, dims, data }));
    return name;
  }

  /** Adds a node; returns its output names (one fresh name per output when none are given). */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs?: string[]): string[] {
    const outs = outputs ?? [this.fresh(opType.toLowerCase())];
    this.nodes.push({
      opType,
      name: this.fresh(`${opType}_node`),
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Shorthand for single-output nodes. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.node(opType, inputs, attrs, output ? [output] : undefined)[0];
  }

  toBytes(opset = 17): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'modelhub-test-model-generator',
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: this.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private fresh(prefix: string): string {
    this.counter += 1;
    return `${prefix}_${this.counter}`;
  }
}

/** Deterministic pseudo-random numbers (mulberry32) so generated weights are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
