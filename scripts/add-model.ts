/**
 * Add an ONNX image classifier trained elsewhere to the model repository, as a model folder like
 * the project's own (models/<id>/<version>/: the served graph, manifest, head.bin):
 *
 *   npm run models:add -- path/to/model.onnx --id pets --labels labels.txt [--preset imagenet]
 *     [--layout NCHW|NHWC] [--channel-order rgb|bgr] [--size 224 | --height H --width W]
 *     [--mean 0.485,0.456,0.406] [--std 0.229,0.224,0.225] [--scale 0.00392156862745098]
 *     [--resize shorter-side|center-crop|stretch] [--shorter-side 256] [--mirrorable]
 *     [--output scores] [--exemplars folder] [--quantize int8] [--name "..."] [--dataset "..."] [--models-dir models]
 *
 * scripts/import_onnx.py reads the graph (input name, shape, layout, dtype; logits or a final
 * Softmax; the linear head) and rewrites it to the served interface; this script then proves
 * onnxruntime-web runs it (the WASM build the Worker runs: an operator it lacks is refused
 * here, not in production), measures its serving memory as for the project's models, and writes
 * the folder. `npm start` then serves it, and `npm run deploy` deploys it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { MODELS_DIR, ROOT, newestVersion, sha256Hex as sha256 } from "./model-repository.ts";
import { servingSection } from "./measure-serving-memory.ts";
import { SESSION_OPTIONS } from "../workers/inference/wasm-heap.ts";

/** Input settings a model trained on a well-known data set was most likely trained with. */
export const PRESETS = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: "shorter-side", shorterSideRatio: 256 / 224, colorSpace: "rgb" },
  cifar10: { mean: [0.4914, 0.4821, 0.4466], std: [0.2454, 0.243, 0.2608], resize: "center-crop", shorterSideRatio: 1, colorSpace: "rgb" },
  mnist: { mean: [0.1307], std: [0.3081], resize: "stretch", shorterSideRatio: 1, colorSpace: "grayscale" },
} as const;

/** Largest exemplar block in head.bin, as scripts/training/head.py: replay embeddings per class up to the cap. */
const EXEMPLAR_BUDGET_BYTES = 4 * 1024 * 1024;
const MAX_EXEMPLARS_PER_CLASS = 200;
const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".webp"]);

/** The model cannot be added; the message says why and what to pass instead. */
export class ModelRefusedError extends Error {
  override name = "ModelRefusedError";
}

interface Imported {
  graph: { input_name: string; dtype: "float32" | "uint8"; shape: (number | string)[]; output_name: string; output_kind: string; opset: number; operators: string[] };
  served: {
    inputName: string; channels: 1 | 3; embeddingSize: number; classes: number; adapter: string[]; removed: string[]; layout: string;
    height: number; width: number; fixedBatch: number | null; quantization?: { scheme: string; fp32Bytes: number };
  };
}

const numbers = (text: string | undefined) => (text === undefined ? undefined : text.split(",").map(Number));

/** Labels from a file: one per line, or a JSON array. */
export function readLabels(path: string): string[] {
  const text = readFileSync(path, "utf8");
  const labels = text.trimStart().startsWith("[") ? (JSON.parse(text) as string[]) : text.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
  if (!labels.length || labels.some((label) => typeof label !== "string" || !label)) throw new ModelRefusedError(`${path}: no labels, or an empty one`);
  if (new Set(labels).size !== labels.length) throw new ModelRefusedError(`${path}: labels repeat`);
  return labels;
}

function runImporter(model: string, args: string[]): Imported {
  try {
    return JSON.parse(execFileSync("/usr/bin/python3", [join(ROOT, "scripts", "import_onnx.py"), model, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })) as Imported;
  } catch (error) {
    const stdout = (error as { stdout?: string }).stdout;
    const refused = stdout ? (JSON.parse(stdout) as { refused?: string }).refused : undefined;
    if (refused) throw new ModelRefusedError(refused);
    throw error;
  }
}

type WebSession = Awaited<ReturnType<(typeof import("onnxruntime-web/wasm"))["InferenceSession"]["create"]>>;

/**
 * The served graph's session in onnxruntime-web's WASM build, after one run, as the Worker will
 * run it; its refusal is the model's. The caller releases it.
 */
async function provenSession(bytes: Uint8Array, inputName: string, shape: number[], classes: number, embeddingSize: number): Promise<WebSession> {
  const ort = await import("onnxruntime-web/wasm");
  ort.env.wasm.numThreads = 1;
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
  } catch (error) {
    throw new ModelRefusedError(`onnxruntime-web (the Worker's runtime) cannot load it: ${(error as Error).message}`);
  }
  try {
    const out = await session.run({ [inputName]: new ort.Tensor("float32", new Float32Array(shape.reduce((a, b) => a * b)).fill(0.5), shape) });
    const dims = (name: string) => out[name]!.dims.join("x");
    if (dims("logits") !== `1x${classes}` || dims("embedding") !== `1x${embeddingSize}`) {
      throw new ModelRefusedError(`one image gave logits ${dims("logits")} and embedding ${dims("embedding")}, not 1x${classes} and 1x${embeddingSize}`);
    }
    return session;
  } catch (error) {
    await session.release();
    if (error instanceof ModelRefusedError) throw error;
    throw new ModelRefusedError(`onnxruntime-web (the Worker's runtime) cannot run it on a ${shape.join("x")} input: ${(error as Error).message}`);
  }
}

/** The Worker's own preprocessing (workers/images/preprocess.ts), bundled for Node. */
async function workerPreprocessing(): Promise<typeof import("../workers/images/preprocess")> {
  const { build } = await import("esbuild");
  const out = await build({ entryPoints: [join(ROOT, "workers", "images", "preprocess.ts")], bundle: true, format: "esm", write: false, platform: "neutral" });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0]!.contents).toString("base64")}`);
}

/**
 * Replay exemplars: the embeddings of up to `perClass` images of every label, from
 * <folder>/<label>/*.{png,jpg,webp}, preprocessed as the Worker preprocesses a request.
 */
async function exemplarEmbeddings(folder: string, labels: string[], session: WebSession, manifest: Record<string, any>): Promise<{ perClass: number; embeddings: Float32Array }> {
  const { default: sharp } = await import("sharp");
  const { toModelInput } = await workerPreprocessing();
  const files = labels.map((label) => {
    const dir = join(folder, label);
    const images = existsSync(dir) ? readdirSync(dir).filter((file) => IMAGE_EXTENSIONS.has(extname(file).toLowerCase())).sort() : [];
    if (!images.length) throw new ModelRefusedError(`--exemplars: ${dir} has no images; every label needs some`);
    return images.map((file) => join(dir, file));
  });
  const budget = Math.floor(EXEMPLAR_BUDGET_BYTES / (4 * labels.length * manifest.embeddingSize));
  const perClass = Math.min(MAX_EXEMPLARS_PER_CLASS, budget, ...files.map((list) => list.length));
  if (perClass < 1) throw new ModelRefusedError(`--exemplars: ${labels.length} classes of ${manifest.embeddingSize}-float embeddings leave no room for one exemplar each within ${EXEMPLAR_BUDGET_BYTES} bytes`);
  const ort = await import("onnxruntime-web/wasm");
  const { channels, height, width } = manifest.input;
  const embeddings = new Float32Array(labels.length * perClass * manifest.embeddingSize);
  let row = 0;
  for (const list of files) {
    for (const path of list.slice(0, perClass)) {
      const { data, info } = await sharp(path).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      const input = toModelInput({ width: info.width, height: info.height, data: new Uint8Array(data) }, manifest.input);
      const out = await session.run({ [manifest.artifact.inputName]: new ort.Tensor("float32", input, [1, channels, height, width]) });
      embeddings.set(out.embedding!.data as Float32Array, row++ * manifest.embeddingSize);
    }
  }
  return { perClass, embeddings };
}

export interface AddOptions {
  id: string;
  labels: string;
  preset?: keyof typeof PRESETS;
  layout?: "NCHW" | "NHWC";
  channelOrder?: "rgb" | "bgr";
  height?: number;
  width?: number;
  mean?: number[];
  std?: number[];
  scale?: number;
  resize?: "shorter-side" | "center-crop" | "stretch";
  shorterSide?: number;
  mirrorable?: boolean;
  output?: string;
  exemplars?: string;
  /** Store Conv and Linear weights as int8 (a quarter of the bytes and of the weights' memory); the head stays fp32. */
  quantize?: "int8";
  name?: string;
  dataset?: string;
  modelsDir?: string;
}

/**
 * Add `onnxPath` to the repository as the next version of `options.id`; returns its folder.
 *
 * @throws ModelRefusedError when it cannot be served, with why
 * @example
 * const dir = await addModel("resnet18.onnx", { id: "resnet18", labels: "imagenet.txt", preset: "imagenet" });
 */
export async function addModel(onnxPath: string, options: AddOptions): Promise<string> {
  if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(options.id)) throw new ModelRefusedError(`--id '${options.id}': use 1-64 lower-case letters, digits and dashes`);
  const labels = readLabels(options.labels);
  const preset = PRESETS[options.preset ?? "imagenet"];
  const modelsDir = resolve(options.modelsDir ?? MODELS_DIR);
  const version = (newestVersion(join(modelsDir, options.id)) ?? 0) + 1;
  mkdirSync(modelsDir, { recursive: true });
  const staging = mkdtempSync(join(modelsDir, `.adding-${options.id}-`));
  try {
    const importerArgs = ["--out", join(staging, "model.onnx"), "--head-weights", join(staging, "head.f32"), "--channel-order", options.channelOrder ?? "rgb"];
    if (options.layout) importerArgs.push("--layout", options.layout);
    if (options.height) importerArgs.push("--height", String(options.height));
    if (options.width) importerArgs.push("--width", String(options.width));
    if (options.output) importerArgs.push("--output", options.output);
    if (options.quantize) importerArgs.push("--quantize", options.quantize);
    const { graph, served } = runImporter(onnxPath, importerArgs);
    if (served.classes !== labels.length) throw new ModelRefusedError(`the model scores ${served.classes} classes, ${options.labels} names ${labels.length}`);
    if (served.channels === 1 && preset.colorSpace === "rgb" && !options.mean) throw new ModelRefusedError("the model reads 1 channel: pass --preset mnist or --mean and --std for grayscale");
    const channels = served.channels;
    // A uint8 graph standardises its pixels itself: it is fed whole levels, 0..255.
    const uint8 = graph.dtype === "uint8";
    const mean = options.mean ?? (uint8 ? Array(channels).fill(0) : [...preset.mean]);
    const std = options.std ?? (uint8 ? Array(channels).fill(1) : [...preset.std]);
    const scale = options.scale ?? (uint8 ? 1 : 1 / 255);
    if (mean.length !== channels || std.length !== channels || mean.some(Number.isNaN) || std.some((s) => !(s > 0))) {
      throw new ModelRefusedError(`--mean and --std need ${channels} numbers each (std above 0), not ${mean} and ${std}`);
    }
    const resize = options.resize ?? preset.resize;
    const shorterSide = resize === "shorter-side" ? (options.shorterSide ?? Math.round(Math.min(served.height, served.width) * preset.shorterSideRatio)) : undefined;
    const bytes = new Uint8Array(readFileSync(join(staging, "model.onnx")));
    const shape = [1, channels, served.height, served.width];
    const session = await provenSession(bytes, served.inputName, shape, served.classes, served.embeddingSize);

    const manifest: Record<string, any> = {
      id: options.id,
      version,
      name: options.name ?? `${basename(onnxPath, extname(onnxPath))} (imported)`,
      architecture: { name: "imported", summary: `ONNX graph brought by its user: ${graph.operators.join(", ")}` },
      dataset: options.dataset ?? (options.preset === "cifar10" ? "CIFAR-10" : options.preset === "mnist" ? "MNIST" : "unknown"),
      task: "image-classification",
      labels,
      input: {
        layout: "NCHW", channels, colorSpace: channels === 1 ? "grayscale" : "rgb", height: served.height, width: served.width,
        scale, mean, std, resize, ...(shorterSide ? { shorterSide } : {}), mirrorable: options.mirrorable ?? false,
        ...(served.fixedBatch ? { fixedBatch: served.fixedBatch } : {}),
      },
      embeddingSize: served.embeddingSize,
      metrics: {},
      ...(served.quantization ? {
        quantization: {
          scheme: served.quantization.scheme, method: "weight-only int8, symmetric, per output channel (DequantizeLinear); the head stays fp32",
          layers: {}, from: `${basename(onnxPath)} (imported)`, fp32Bytes: served.quantization.fp32Bytes,
        },
      } : {}),
      training: { imported: true },
      imported: {
        from: basename(onnxPath),
        sha256: sha256(new Uint8Array(readFileSync(onnxPath))),
        graphInput: { name: graph.input_name, dtype: graph.dtype, shape: graph.shape, layout: served.layout, channelOrder: options.channelOrder ?? "rgb" },
        graphOutput: { name: graph.output_name, kind: graph.output_kind },
        adapter: served.adapter,
        removed: served.removed,
        preset: options.preset ?? "imagenet",
      },
      artifact: {
        file: "model.onnx", format: "onnx", opset: graph.opset, bytes: bytes.byteLength, sha256: sha256(bytes),
        inputName: served.inputName, outputs: { embedding: "embedding", logits: "logits" }, producer: "scripts/add-model.ts",
      },
      exportedAt: new Date().toISOString(),
    };
    const weights = new Uint8Array(readFileSync(join(staging, "head.f32")));
    rmSync(join(staging, "head.f32"));
    let exemplars: { perClass: number; embeddings: Float32Array } = { perClass: 0, embeddings: new Float32Array(0) };
    try {
      if (options.exemplars) exemplars = await exemplarEmbeddings(options.exemplars, labels, session, manifest);
    } finally {
      await session.release();
    }
    const head = new Uint8Array(weights.byteLength + exemplars.embeddings.byteLength);
    head.set(weights);
    head.set(new Uint8Array(exemplars.embeddings.buffer), weights.byteLength);
    writeFileSync(join(staging, "head.bin"), head);
    manifest.head = {
      file: "head.bin", bytes: head.byteLength, sha256: sha256(head), classes: labels.length, embeddingSize: served.embeddingSize,
      exemplarsPerClass: exemplars.perClass,
      exemplars: exemplars.perClass ? `the first ${exemplars.perClass} images of each label in ${basename(options.exemplars!)}/` : "none: added without --exemplars",
      layout: "float32 little-endian: weight [classes, embeddingSize], bias [classes], exemplar embeddings [classes * exemplarsPerClass, embeddingSize], class-major",
    };
    writeFileSync(join(staging, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    manifest.serving = servingSection(staging);
    writeFileSync(join(staging, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    const dir = join(modelsDir, options.id, String(version));
    mkdirSync(dirname(dir), { recursive: true });
    renameSync(staging, dir);
    return dir;
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      id: { type: "string" }, labels: { type: "string" }, preset: { type: "string" }, layout: { type: "string" },
      "channel-order": { type: "string" }, size: { type: "string" }, height: { type: "string" }, width: { type: "string" },
      mean: { type: "string" }, std: { type: "string" }, scale: { type: "string" }, resize: { type: "string" },
      "shorter-side": { type: "string" }, mirrorable: { type: "boolean" }, output: { type: "string" }, exemplars: { type: "string" }, quantize: { type: "string" },
      name: { type: "string" }, dataset: { type: "string" }, "models-dir": { type: "string" },
    },
  });
  const oneOf = <T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined => {
    if (value !== undefined && !allowed.includes(value as T)) throw new ModelRefusedError(`--${flag} must be one of ${allowed.join(", ")}, not '${value}'`);
    return value as T | undefined;
  };
  const integer = (flag: string, value: string | undefined) => {
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new ModelRefusedError(`--${flag} must be a positive integer, not '${value}'`);
    return Number(value);
  };
  try {
    if (positionals.length !== 1 || !values.id || !values.labels) throw new ModelRefusedError("usage: npm run models:add -- model.onnx --id <id> --labels <file> [options]; see scripts/README.md");
    const dir = await addModel(positionals[0]!, {
      id: values.id, labels: values.labels,
      preset: oneOf("preset", values.preset, Object.keys(PRESETS) as (keyof typeof PRESETS)[]),
      layout: oneOf("layout", values.layout, ["NCHW", "NHWC"] as const),
      channelOrder: oneOf("channel-order", values["channel-order"], ["rgb", "bgr"] as const),
      height: integer("height", values.height ?? values.size), width: integer("width", values.width ?? values.size),
      mean: numbers(values.mean), std: numbers(values.std), scale: values.scale === undefined ? undefined : Number(values.scale),
      resize: oneOf("resize", values.resize, ["shorter-side", "center-crop", "stretch"] as const),
      shorterSide: integer("shorter-side", values["shorter-side"]), mirrorable: values.mirrorable, output: values.output,
      exemplars: values.exemplars, quantize: oneOf("quantize", values.quantize, ["int8"] as const), name: values.name, dataset: values.dataset, modelsDir: values["models-dir"],
    });
    const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
    const { serving, input, imported } = manifest;
    console.log(`${dir}: ${manifest.labels.length} classes, input ${input.channels}x${input.height}x${input.width} (${input.resize}), ` +
      `adapter: ${imported.adapter.join(", ") || "none"}; ${(serving.memoryBytes / 2 ** 20).toFixed(1)} MiB at run batch ${serving.runBatch}, ` +
      `${serving.servable ? "servable" : `NOT servable within ${serving.budgetBytes / 2 ** 20} MiB`}; head ${manifest.head.exemplarsPerClass} exemplars per class`);
    console.log("serve it: npm start (rebuilds the catalog, uploads its R2 files); deploy it: npm run deploy -- --env production (uploads them first)");
  } catch (error) {
    if (!(error instanceof ModelRefusedError)) throw error;
    console.error(`models:add: ${error.message}`);
    process.exit(2);
  }
}
