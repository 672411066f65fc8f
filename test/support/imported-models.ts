/**
 * Models this project did not design, exported in the test run from torchvision's architectures
 * (scripts/export_torchvision.py) in the shapes users bring them, added with `npm run
 * models:add`'s addModel into a repository of their own beside LeNet, and that repository's
 * Worker bundle.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { addModel, type AddOptions } from "../../scripts/add-model.ts";
import { buildWorker } from "../../scripts/local-worker.ts";
import { CIFAR_LABELS, cifarValidation } from "./cifar";
import { PYTHON, ROOT } from "./paths";

export interface ImportedCase {
  id: string;
  /** scripts/export_torchvision.py's arguments after the architecture and file. */
  arch: string;
  exportArgs: string[];
  classes: number;
  add?: Partial<AddOptions>;
}

/** ImageNet-sized nets as exported, and the variants other exporters leave (all 224x224). */
export const IMPORTED_CASES: ImportedCase[] = [
  { id: "mobilenet-v2", arch: "mobilenet_v2", exportArgs: ["--opset", "17"], classes: 1000 },
  // fp32 ResNet-18 needs 178 MiB in ORT's heap, over an isolate's budget: served as int8 weights.
  { id: "resnet18-int8", arch: "resnet18", exportArgs: ["--opset", "13"], classes: 1000, add: { quantize: "int8" } },
  { id: "mnv2-nhwc-softmax", arch: "mobilenet_v2", exportArgs: ["--classes", "10", "--nhwc", "--softmax"], classes: 10 },
  { id: "mnv2-batch1", arch: "mobilenet_v2", exportArgs: ["--classes", "10", "--fixed-batch", "--opset", "13"], classes: 10 },
  { id: "mnv2-uint8", arch: "mobilenet_v2", exportArgs: ["--classes", "10", "--uint8"], classes: 10 },
];

export const IMPORT_DIR = join(ROOT, "test", ".build", "imported");
export const IMPORTED_MODELS_DIR = join(IMPORT_DIR, "models");
export const IMPORTED_BUILD_DIR = join(IMPORT_DIR, "worker");

/** Export one case's ONNX file; returns its path. */
export function exportCase(c: ImportedCase): string {
  const path = join(IMPORT_DIR, "onnx", `${c.id}.onnx`);
  mkdirSync(join(IMPORT_DIR, "onnx"), { recursive: true });
  execFileSync(PYTHON, [join(ROOT, "scripts", "export_torchvision.py"), c.arch, path, ...c.exportArgs], { stdio: ["ignore", "ignore", "inherit"] });
  return path;
}

/** A labels file for `classes` classes: CIFAR-10's names for ten, class-N otherwise. */
export function labelsFile(classes: number): string {
  const path = join(IMPORT_DIR, `labels-${classes}.txt`);
  writeFileSync(path, (classes === 10 ? CIFAR_LABELS : Array.from({ length: classes }, (_, i) => `class-${i}`)).join("\n") + "\n");
  return path;
}

/** A folder of `perClass` CIFAR-10 validation JPEGs per label, as --exemplars reads it. */
export function exemplarFolder(perClass: number): string {
  const dir = join(IMPORT_DIR, "exemplars");
  for (const file of cifarValidation(perClass)) {
    mkdirSync(join(dir, CIFAR_LABELS[file.label]!), { recursive: true });
    writeFileSync(join(dir, file.name), file.bytes);
  }
  return dir;
}

/**
 * A fresh repository holding LeNet (the default model) and every case added by the command,
 * the ten-class ones with exemplars; returns each case's model folder and ONNX file.
 */
export async function importedRepository(cases = IMPORTED_CASES): Promise<Map<string, { dir: string; onnx: string }>> {
  rmSync(IMPORT_DIR, { recursive: true, force: true });
  mkdirSync(IMPORTED_MODELS_DIR, { recursive: true });
  symlinkSync(join(ROOT, "models", "lenet"), join(IMPORTED_MODELS_DIR, "lenet"));
  const exemplars = exemplarFolder(3);
  const added = new Map<string, { dir: string; onnx: string }>();
  for (const c of cases) {
    const onnx = exportCase(c);
    const dir = await addModel(onnx, {
      id: c.id, labels: labelsFile(c.classes), preset: "imagenet", modelsDir: IMPORTED_MODELS_DIR,
      ...(c.classes === 10 ? { exemplars, dataset: "CIFAR-10" } : {}), ...c.add,
    });
    added.set(c.id, { dir, onnx });
  }
  return added;
}

/** The Worker bundle serving the imported repository. */
export function buildImportedWorker(): string {
  buildWorker(IMPORTED_BUILD_DIR, "", IMPORTED_MODELS_DIR);
  return IMPORTED_BUILD_DIR;
}

/** Put workers/models/catalog.generated.ts back to models/'s (an imported build rewrote it). */
export function restoreCatalog(): void {
  execFileSync(process.execPath, [join(ROOT, "scripts", "build-model-catalog.ts")], { cwd: ROOT, stdio: "ignore", env: { ...process.env, CNN_EDGE_MODELS_DIR: "" } });
}
