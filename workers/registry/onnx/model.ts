/**
 * An ONNX model read at the level a served-graph rewrite needs: the graph's nodes, initializers,
 * inputs and outputs (onnx.proto's field numbers), each keeping its original bytes so that the
 * rewrite copies what it does not change.
 */
import { ProtobufError, every, fields, first, ints, text, type Field } from "./protobuf";

/** The bytes are not an ONNX model this rewrite can read; the message says what is wrong. */
export class OnnxFormatError extends Error {
  override name = "OnnxFormatError";
}

/** onnx.proto's TensorProto.DataType values this code meets. */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10, DOUBLE: 11 } as const;

const DATA_TYPE_NAMES: Record<number, string> = {
  1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
  10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
};

/** A data type's name as numpy spells it. */
export const dataTypeName = (type: number): string => DATA_TYPE_NAMES[type] ?? `type ${type}`;

export interface OnnxAttribute {
  name: string;
  fields: Field[];
}

export interface OnnxNode {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: OnnxAttribute[];
  /** Whether an attribute holds a subgraph (If, Loop, Scan), which may read this graph's tensors unseen. */
  hasSubgraph: boolean;
  raw: Field;
}

export interface OnnxValueInfo {
  name: string;
  /** TensorProto.DataType, 0 when the value is no tensor. */
  elemType: number;
  /** Fixed sizes as numbers, symbolic ones by name ("?" when unnamed); undefined when the shape is not given. */
  dims: (number | string)[] | undefined;
  raw: Field;
}

export interface OnnxTensor {
  name: string;
  dataType: number;
  dims: number[];
  fields: Field[];
  raw: Field;
}

export interface OnnxModel {
  /** ModelProto's fields, the graph among them. */
  modelFields: Field[];
  /** GraphProto's fields, in order. */
  graphFields: Field[];
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  /** graph.input, initializers included where the exporter lists them there. */
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** The default ("" / "ai.onnx") domain's opset, 0 when it imports none. */
  opset: number;
  irVersion: number;
}

function dims(typeProto: Uint8Array | undefined): { elemType: number; dims: (number | string)[] | undefined } {
  const tensorType = typeProto && first(fields(typeProto), 1);
  if (!tensorType) return { elemType: 0, dims: undefined };
  const tensor = fields(tensorType.bytes);
  const shape = first(tensor, 2);
  return {
    elemType: first(tensor, 1)?.int ?? 0,
    dims: shape
      ? every(fields(shape.bytes), 1).map((dim) => {
          const parts = fields(dim.bytes);
          const value = first(parts, 1);
          if (value) return value.int;
          const param = first(parts, 2);
          return param ? text(param) || "?" : "?";
        })
      : undefined,
  };
}

function valueInfo(raw: Field): OnnxValueInfo {
  const parts = fields(raw.bytes);
  const name = first(parts, 1);
  return { name: name ? text(name) : "", ...dims(first(parts, 2)?.bytes), raw };
}

/** A TensorProto from its bytes (an initializer, or a Constant node's value). */
export function readTensor(raw: Field): OnnxTensor {
  const parts = fields(raw.bytes);
  const name = first(parts, 8);
  return { name: name ? text(name) : "", dataType: first(parts, 2)?.int ?? 0, dims: ints(parts, 1), fields: parts, raw };
}

function node(raw: Field): OnnxNode {
  const parts = fields(raw.bytes);
  const attributes = every(parts, 5).map((attr) => {
    const attrFields = fields(attr.bytes);
    const name = first(attrFields, 1);
    return { name: name ? text(name) : "", fields: attrFields };
  });
  return {
    opType: text(first(parts, 4) ?? { number: 4, wire: 2, int: 0, bytes: new Uint8Array() }),
    domain: first(parts, 7) ? text(first(parts, 7)!) : "",
    inputs: every(parts, 1).map(text),
    outputs: every(parts, 2).map(text),
    attributes,
    hasSubgraph: attributes.some((attr) => first(attr.fields, 6) !== undefined || first(attr.fields, 11) !== undefined),
    raw,
  };
}

/**
 * Read a model.
 *
 * @throws OnnxFormatError when the bytes are no ONNX model (not protobuf, truncated, no graph)
 * @example
 * const model = readModel(new Uint8Array(await file.arrayBuffer()));
 * model.inputs[0].dims; // [1, 3, 224, 224]
 */
export function readModel(bytes: Uint8Array): OnnxModel {
  try {
    const modelFields = fields(bytes);
    const graph = first(modelFields, 7);
    if (!graph || graph.wire !== 2) throw new OnnxFormatError("it has no graph: not an ONNX model");
    const graphFields = fields(graph.bytes);
    const initializers = new Map(every(graphFields, 5).map((raw) => readTensor(raw)).map((tensor) => [tensor.name, tensor]));
    const opsets = every(modelFields, 8).map((entry) => fields(entry.bytes));
    const onnxOpset = opsets.find((entry) => {
      const domain = first(entry, 1);
      return !domain || ["", "ai.onnx"].includes(text(domain));
    });
    return {
      modelFields,
      graphFields,
      nodes: every(graphFields, 1).map(node),
      initializers,
      inputs: every(graphFields, 11).map(valueInfo),
      outputs: every(graphFields, 12).map(valueInfo),
      opset: onnxOpset ? (first(onnxOpset, 2)?.int ?? 0) : 0,
      irVersion: first(modelFields, 1)?.int ?? 0,
    };
  } catch (error) {
    if (error instanceof ProtobufError) throw new OnnxFormatError(`it is not an ONNX model (${error.message})`);
    throw error;
  }
}

/** An attribute's scalar: its int (`i`), or its float (`f`), or `fallback`. */
export function attributeNumber(node: OnnxNode, name: string, fallback: number): number {
  const attr = node.attributes.find((a) => a.name === name);
  if (!attr) return fallback;
  const f = first(attr.fields, 2);
  if (f) return new DataView(f.bytes.buffer, f.bytes.byteOffset, 4).getFloat32(0, true);
  return first(attr.fields, 3)?.int ?? fallback;
}

/**
 * A float tensor's values, or undefined for other types and data kept outside the file.
 *
 * @example
 * const weight = floatValues(model.initializers.get("fc.weight")!); // Float32Array, row-major
 */
export function floatValues(tensor: OnnxTensor): Float32Array | undefined {
  if (tensor.dataType !== DataType.FLOAT || first(tensor.fields, 14)?.int === 1) return undefined;
  const count = tensor.dims.reduce((a, b) => a * b, 1);
  const raw = first(tensor.fields, 9);
  if (raw) {
    if (raw.bytes.length !== count * 4) return undefined;
    return new Float32Array(raw.bytes.slice().buffer); // copied: aligned and little-endian, as ONNX stores it
  }
  const values: number[] = [];
  for (const field of every(tensor.fields, 4)) {
    const view = new DataView(field.bytes.buffer, field.bytes.byteOffset, field.bytes.byteLength);
    for (let pos = 0; pos + 4 <= field.bytes.length; pos += 4) values.push(view.getFloat32(pos, true));
  }
  return values.length === count ? Float32Array.from(values) : undefined;
}
