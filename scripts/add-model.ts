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
 * The Worker's import pipeline (workers/registry/imported-model.ts, the one POST /v1/models
 * runs) reads the graph (input name, shape, layout, dtype; logits or a final Softmax; the linear
 * head) and rewrites it to the served interface; this script then proves onnxruntime-web runs
 * it (the WASM build the Worker runs: an operator it lacks is refused here, not in production),
 * measures its serving memory as for the project's models, and writes the folder. `npm start`
 * then serves it, and `npm run deploy` deploys it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { MODELS_DIR, ROOT, newestVersion, sha256Hex as sha256 } from "./model-repository.ts";
import { servingSection } from "./measure-serving-memory.ts";
import { SESSION_OPTIONS } from "../workers/inference/wasm-heap.ts";
import type * as ImportedModule from "../workers/registry/imported-model";

/** Largest exemplar block in head.bin, as scripts/training/head.py: replay embeddings per class up to the cap. */
const EXEMPLAR_BUDGET_BYTES = 4 * 1024 * 1024;
const MAX_EXEMPLARS_PER_CLASS = 200;
const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".webp"]);

/** The model cannot be added; the message says why and what to pass instead. */
export class ModelRefusedError extends Error {
  override name = "ModelRefusedError";
}

/**
 * A Worker module bundled for Node (the Worker's imports carry no file extensions): the same
 * code that serves a request, or registers a model through the API, runs here.
 */
async function workerModule<T>(path: string): Promise<T> {
  const { build } = await import("esbuild");
  const out = await build({ entryPoints: [join(ROOT, "workers", path)], bundle: true, format: "esm", write: false, platform: "neutral" });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0]!.contents).toString("base64")}`);
}

/** The Worker's import pipeline (workers/registry/imported-model.ts), its refusals as ModelRefusedError. */
let bundled: Promise<typeof ImportedModule> | undefined; // bundled once per process

async function importer(): Promise<typeof ImportedModule> {
  const module = await (bundled ??= workerModule<typeof ImportedModule>("registry/imported-model.ts"));
  const refused = <A extends unknown[], R>(fn: (...args: A) => R) => (...args: A): R => {
    const rethrow = (error: unknown): never => {
      throw (error as Error).name === "ImportRefusedError" ? new ModelRefusedError((error as Error).message) : error;
    };
    try {
      const result = fn(...args);
      return (result instanceof Promise ? result.catch(rethrow) : result) as R;
    } catch (error) {
      return rethrow(error);
    }
  };
  return { ...module, importModel: refused(module.importModel), parseLabels: refused(module.parseLabels) };
}

/** Labels from a file: one per line, or a JSON array. */
export async function readLabels(path: string): Promise<string[]> {
  try {
    return (await importer()).parseLabels(readFileSync(path, "utf8"));
  } catch (error) {
    throw error instanceof ModelRefusedError ? new ModelRefusedError(`${path}: ${error.message}`) : error;
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

/**
 * Replay exemplars: the embeddings of up to `perClass` images of every label, from
 * <folder>/<label>/*.{png,jpg,webp}, preprocessed as the Worker preprocesses a request.
 */
async function exemplarEmbeddings(folder: string, labels: string[], session: WebSession, manifest: Record<string, any>): Promise<{ perClass: number; embeddings: Float32Array }> {
  const { default: sharp } = await import("sharp");
  const { toModelInput } = await workerModule<typeof import("../workers/images/preprocess")>("images/preprocess.ts");
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

/** The Worker's import settings (labels as a file here, the file name taken from the path), and what only the command does. */
export interface AddOptions extends Omit<ImportedModule.ImportSettings, "labels" | "fileName"> {
  /** A labels file: one per line, or a JSON array. */
  labels: string;
  exemplars?: string;
  /** Store Conv and Linear weights as int8 (a quarter of the bytes and of the weights' memory); the head stays fp32. */
  quantize?: "int8";
  modelsDir?: string;
}

/**
 * Add `onnxPath` to the repository as the next version of `options.id`; returns its folder.
 * The graph work is the Worker's own (workers/registry/imported-model.ts, as POST /v1/models
 * runs it); here onnxruntime-web in Node proves the served graph, --quantize stores its weights
 * as int8 (scripts/quantize_imported.py), --exemplars embeds replay images, and the serving
 * memory is measured in fresh processes.
 *
 * @throws ModelRefusedError when it cannot be served, with why
 * @example
 * const dir = await addModel("resnet18.onnx", { id: "resnet18", labels: "imagenet.txt", preset: "imagenet" });
 */
export async function addModel(onnxPath: string, options: AddOptions): Promise<string> {
  const { importModel, headFile } = await importer();
  const labels = await readLabels(options.labels);
  const source = new Uint8Array(readFileSync(onnxPath));
  // The command-only options (exemplars, quantize, modelsDir) ride along unread by the import.
  const { served, manifest: imported, headWeights } = await importModel(source, { ...options, labels, fileName: basename(onnxPath) }, "scripts/add-model.ts");
  const modelsDir = resolve(options.modelsDir ?? MODELS_DIR);
  const version = (newestVersion(join(modelsDir, options.id)) ?? 0) + 1;
  mkdirSync(modelsDir, { recursive: true });
  const staging = mkdtempSync(join(modelsDir, `.adding-${options.id}-`));
  try {
    const manifest: Record<string, any> = { ...imported, version };
    writeFileSync(join(staging, "model.onnx"), served.bytes);
    if (options.quantize) {
      // The head stays fp32: fine-tuned copies learn in its space.
      execFileSync("/usr/bin/python3", [join(ROOT, "scripts", "quantize_imported.py"), join(staging, "model.onnx"), "--keep", served.headWeight], { stdio: ["ignore", "ignore", "inherit"] });
      const quantized = new Uint8Array(readFileSync(join(staging, "model.onnx")));
      manifest.artifact = { ...manifest.artifact, bytes: quantized.byteLength, sha256: sha256(quantized) };
      manifest.quantization = {
        scheme: options.quantize, method: "weight-only int8, symmetric, per output channel (DequantizeLinear); the head stays fp32",
        layers: {}, from: `${basename(onnxPath)} (imported)`, fp32Bytes: served.bytes.byteLength,
      };
    }
    const bytes = new Uint8Array(readFileSync(join(staging, "model.onnx")));
    const shape = [1, served.channels, served.height, served.width];
    const session = await provenSession(bytes, served.inputName, shape, served.classes, served.embeddingSize);
    let exemplars: { perClass: number; embeddings: Float32Array; source: string } = { perClass: 0, embeddings: new Float32Array(0), source: "none: added without --exemplars" };
    try {
      if (options.exemplars) {
        const found = await exemplarEmbeddings(options.exemplars, labels, session, manifest);
        exemplars = { ...found, source: `the first ${found.perClass} images of each label in ${basename(options.exemplars)}/` };
      }
    } finally {
      await session.release();
    }
    const head = await headFile(headWeights, labels.length, served.embeddingSize, exemplars);
    writeFileSync(join(staging, "head.bin"), head.bytes);
    manifest.head = head.section;
    writeFileSync(join(staging, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    manifest.serving = await servingSection(staging);
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

const numbers = (text: string | undefined) => (text === undefined ? undefined : text.split(",").map(Number));

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
      preset: oneOf("preset", values.preset, ["imagenet", "cifar10", "mnist"] as const),
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
