/**
 * The playground page: classify an image on the server (the Worker, WASM) and in this browser
 * (the same engine on WebGPU or WASM), side by side; teach a classifier a few labelled images
 * and watch its predictions and version change.
 */
import { browserEngine } from "../../engine/browser";
import type { EngineSession, InferenceEngine, ProviderPreference } from "../../engine/engine";
import { averageMirrors, withMirrors } from "../../classify/flip-average";
import { toModelInput } from "../../images/preprocess";
import { topK, type Prediction } from "../../inference/topk";
import type { ModelManifest } from "../../models/manifest";
import { Api, ApiError, type ModelSummary } from "./api";
import { decodeInBrowser } from "./pixels";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const modelSelect = $<HTMLSelectElement>("model");
const providerSelect = $<HTMLSelectElement>("provider");
const fileInput = $<HTMLInputElement>("file");
const dropZone = $<HTMLElement>("drop");
const preview = $<HTMLImageElement>("preview");
const drawing = $<HTMLCanvasElement>("drawing");
const keyInput = $<HTMLInputElement>("api-key");
const classifierInput = $<HTMLInputElement>("classifier");
const labelInput = $<HTMLInputElement>("label");
const examplesList = $<HTMLUListElement>("examples");
const status = $<HTMLElement>("status");

const api = new Api(() => keyInput.value);
let models: ModelSummary[] = [];
let image: Blob | undefined;
const examples: { image: Blob; label: string; url: string }[] = [];

/** Where the in-browser result of a model id, a provider and an image comes from. */
export interface BrowserResult {
  provider: string;
  logits: number[];
  predictions: Prediction[];
  inferenceMs: number;
  loadMs?: number;
}

// ---- the engine in this browser ---------------------------------------------------------------

let engine: Promise<InferenceEngine> | undefined;
const manifests = new Map<string, Promise<ModelManifest>>();
const sessions = new Map<string, Promise<EngineSession>>();

const browserEngineOnce = () => (engine ??= browserEngine("/ort/"));

function manifestOf(id: string): Promise<ModelManifest> {
  let manifest = manifests.get(id);
  if (!manifest) manifests.set(id, (manifest = api.manifest(id)));
  return manifest;
}

/**
 * Run a served model on an image in this browser, on the provider asked for ("auto": WebGPU
 * when it has an adapter and runs the model, else WASM), with the image's mirror averaged in
 * when `flipAverage` (as the server does for flip_average=true).
 *
 * @example
 * const { provider, logits } = await classifyInBrowser("lenet", "webgpu", file);
 */
export async function classifyInBrowser(id: string, preference: ProviderPreference, image: Blob, flipAverage = false): Promise<BrowserResult> {
  const manifest = await manifestOf(id);
  const key = `${id}@${manifest.version}:${preference}`;
  let loadMs: number | undefined;
  let session = sessions.get(key);
  if (!session) {
    const started = performance.now();
    session = Promise.all([browserEngineOnce(), api.artifact(manifest)]).then(([engine, bytes]) => engine.createSession(bytes, manifest, preference));
    sessions.set(key, session);
    session.catch(() => sessions.delete(key));
    await session;
    loadMs = performance.now() - started;
  }
  const loaded = await session;
  const input = toModelInput(await decodeInBrowser(image), manifest.input);
  const mirrored = flipAverage && !manifest.architecture.flipAverage; // a first CIFAR-10 export averages inside its graph
  const started = performance.now();
  const { outputs } = await loaded.run(mirrored ? withMirrors(input, 1, manifest.input) : input, mirrored ? 2 : 1, ["logits"]);
  const inferenceMs = performance.now() - started;
  const logits = Array.from(mirrored ? averageMirrors(outputs.logits!, 1, manifest.labels.length) : outputs.logits!);
  return { provider: loaded.provider, logits, predictions: topK(logits, manifest.labels, 5), inferenceMs, ...(loadMs !== undefined ? { loadMs } : {}) };
}

// ---- showing results --------------------------------------------------------------------------

const ms = (value: number) => `${value < 10 ? value.toFixed(2) : value.toFixed(0)} ms`;

function showPredictions(panel: string, title: string, predictions: Prediction[], detail: string, logits?: number[]): void {
  const section = $<HTMLElement>(panel);
  section.hidden = false;
  section.querySelector("h3")!.textContent = title;
  section.querySelector(".detail")!.textContent = detail;
  const list = section.querySelector("ol")!;
  list.replaceChildren(
    ...predictions.map(({ label, probability }) => {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.className = "label";
      name.textContent = label;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.setProperty("--p", String(probability));
      bar.setAttribute("role", "img");
      bar.setAttribute("aria-label", `${(probability * 100).toFixed(1)} percent`);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = `${(probability * 100).toFixed(1)}%`;
      item.append(name, bar, value);
      return item;
    }),
  );
  if (logits) section.dataset.logits = JSON.stringify(logits);
  else delete section.dataset.logits;
  section.dataset.top = predictions[0]?.label ?? "";
}

function say(message: string, kind: "info" | "error" = "info"): void {
  status.textContent = message;
  status.dataset.kind = kind;
}

const failure = (error: unknown) => say(error instanceof Error ? error.message : String(error), "error");

// ---- picking an image -------------------------------------------------------------------------

function useImage(blob: Blob): void {
  image = blob;
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(blob);
  preview.hidden = false;
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-needs-image]")) button.disabled = false;
}

fileInput.addEventListener("change", () => fileInput.files?.[0] && useImage(fileInput.files[0]));
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("over");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("over");
  const file = event.dataTransfer?.files[0];
  if (file) useImage(file);
});

// A digit drawn light on dark, as MNIST's are.
const pen = drawing.getContext("2d")!;
function clearDrawing(): void {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, drawing.width, drawing.height);
}
clearDrawing();
let drawingStroke = false;
// The canvas is drawn at a fixed resolution and shown at whatever size the page gives it.
const onCanvas = (event: PointerEvent): [number, number] => [
  (event.offsetX * drawing.width) / drawing.clientWidth,
  (event.offsetY * drawing.height) / drawing.clientHeight,
];
drawing.addEventListener("pointerdown", (event) => {
  drawingStroke = true;
  drawing.setPointerCapture(event.pointerId);
  pen.beginPath();
  pen.moveTo(...onCanvas(event));
});
drawing.addEventListener("pointermove", (event) => {
  if (!drawingStroke) return;
  pen.strokeStyle = "#fff";
  pen.lineWidth = 22;
  pen.lineCap = pen.lineJoin = "round";
  pen.lineTo(...onCanvas(event));
  pen.stroke();
});
drawing.addEventListener("pointerup", () => {
  drawingStroke = false;
  drawing.toBlob((blob) => blob && useImage(blob), "image/png");
});
$("clear-drawing").addEventListener("click", clearDrawing);

// ---- classify: server and browser side by side ---------------------------------------------

async function classifyBoth(): Promise<void> {
  if (!image) return;
  const id = modelSelect.value;
  const current = image;
  say(`Classifying with ${id} on the server and in this browser…`);
  // Both sides run the model's default: one pass, or the image and its mirror averaged.
  const flipAverage = models.find((model) => model.id === id)?.flipAverage ?? false;
  const server = api.classify(current, { model: id }, flipAverage).then((response) => {
    const { timing, results } = response;
    const result = results[0]!;
    showPredictions("server-result", `Server · ${timing.provider}`, result.predictions,
      `inference ${ms(timing.inferenceMs)}, decode ${ms(timing.decodeMs)}${timing.coldStart ? " (cold start)" : ""}`, result.logits);
    return result.logits;
  });
  const browser = classifyInBrowser(id, providerSelect.value as ProviderPreference, current, flipAverage).then((result) => {
    showPredictions("browser-result", `This browser · ${result.provider}`, result.predictions,
      `inference ${ms(result.inferenceMs)}${result.loadMs !== undefined ? `, model loaded in ${ms(result.loadMs)}` : ""}`, result.logits);
    return result.logits;
  });
  const [onServer, inBrowser] = await Promise.allSettled([server, browser]);
  if (onServer.status === "rejected") return failure(onServer.reason);
  if (inBrowser.status === "rejected") return failure(new Error(`In this browser: ${inBrowser.reason instanceof Error ? inBrowser.reason.message : inBrowser.reason}`));
  const difference = Math.max(...onServer.value.map((logit, i) => Math.abs(logit - inBrowser.value[i]!)));
  const agreement = $<HTMLElement>("agreement");
  agreement.dataset.maxDifference = String(difference);
  agreement.textContent = `Largest difference between the two sets of logits: ${difference.toExponential(2)}.`;
  say("Done.");
}
$("classify").addEventListener("click", () => void classifyBoth().catch(failure));

// ---- teaching a classifier ------------------------------------------------------------------

const classifierId = () => classifierInput.value.trim() || `playground-${modelSelect.value}`;

function addExample(): void {
  const label = labelInput.value.trim();
  if (!image) return say("Pick or draw an image first.", "error");
  if (!label) return say("Type the label of this image first.", "error");
  const url = URL.createObjectURL(image);
  examples.push({ image, label, url });
  const item = document.createElement("li");
  const thumbnail = document.createElement("img");
  thumbnail.src = url;
  thumbnail.alt = `example labelled ${label}`;
  const caption = document.createElement("span");
  caption.textContent = label;
  item.append(thumbnail, caption);
  examplesList.append(item);
  $<HTMLButtonElement>("teach").disabled = false;
  say(`${examples.length} example${examples.length === 1 ? "" : "s"} ready to teach.`);
}
$("add-example").addEventListener("click", addExample);

async function teach(): Promise<void> {
  const id = classifierId();
  const backbone = modelSelect.value;
  let classifier = await api.classifier(id);
  if (!classifier) classifier = await api.createClassifier(id, backbone);
  else if (classifier.backbone.id !== backbone) throw new Error(`Classifier '${id}' is built on ${classifier.backbone.id}; pick that model or another classifier name.`);
  say(`Teaching ${id} ${examples.length} example${examples.length === 1 ? "" : "s"}…`);
  const taught = await api.teach(id, examples);
  for (const { url } of examples.splice(0)) URL.revokeObjectURL(url);
  examplesList.replaceChildren();
  $<HTMLButtonElement>("teach").disabled = true;
  const version = $<HTMLElement>("classifier-version");
  version.dataset.version = String(taught.classifier.version);
  version.textContent = `${id}: version ${taught.classifier.version} (was ${classifier.version}), labels ${taught.labels.join(", ")}`;
  say(`${id} is now at version ${taught.classifier.version}.`);
  await classifyWithClassifier();
}
$("teach").addEventListener("click", () =>
  void teach().catch((error: unknown) =>
    error instanceof ApiError && error.status === 401
      ? say("Teaching needs an API key: paste the one `npm start` printed (it is also in .dev.vars) into the API key field.", "error")
      : failure(error),
  ),
);

async function classifyWithClassifier(): Promise<void> {
  if (!image) return;
  const id = classifierId();
  const { results, classifier, timing } = await api.classify(image, { classifier: id });
  showPredictions("classifier-result", `Classifier ${id} · version ${classifier?.version}`, results[0]!.predictions, `inference ${ms(timing.inferenceMs)}`);
}
$("classify-with-classifier").addEventListener("click", () => void classifyWithClassifier().catch(failure));

// ---- start-up -------------------------------------------------------------------------------

keyInput.value = localStorage.getItem("cnn-edge-api-key") ?? "";
keyInput.addEventListener("change", () => localStorage.setItem("cnn-edge-api-key", keyInput.value));
modelSelect.addEventListener("change", () => {
  $("drawing-panel").hidden = !models.find((model) => model.id === modelSelect.value && model.input.channels === 1);
  classifierInput.placeholder = `playground-${modelSelect.value}`;
});

async function start(): Promise<void> {
  const [listed, health] = await Promise.all([api.models(), api.health()]);
  models = listed.models.filter((model) => model.servable);
  modelSelect.replaceChildren(
    ...models.map((model) => {
      const option = document.createElement("option");
      option.value = model.id;
      option.textContent = `${model.id}: ${model.name} (${model.dataset}${model.source === "registered" ? `, registered v${model.version}` : ""})`;
      option.selected = model.id === listed.default;
      return option;
    }),
  );
  modelSelect.dispatchEvent(new Event("change"));
  const gpu = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  const fallback = (gpu?.info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter;
  const here = !gpu ? "no WebGPU adapter, so it runs WASM" : fallback ? "a WebGPU adapter that runs on the CPU, so auto picks WASM" : "a WebGPU adapter";
  $("hosts").textContent =
    `The server runs models on ${health.engine.host} (WebGPU ${health.engine.webgpu.available ? "available" : "not available"}); this browser has ${here}.`;
  document.body.dataset.ready = "true";
}

// For the curious and for the browser tests: the page's engine from the console.
Object.assign(globalThis, { cnnEdge: { classifyInBrowser } });
void start().catch(failure);
