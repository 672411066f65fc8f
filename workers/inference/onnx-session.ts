/**
 * The sessions resident in this isolate (or Node process): one per model and provider choice,
 * each behind its DynamicBatcher, created by the host's InferenceEngine (workers/engine) on
 * first use and kept within the model memory budget.
 */
import { inputSize, type EngineSession, type ExecutionProvider, type InferenceEngine, type ProviderPreference } from "../engine/engine";
import { loadArtifact } from "../models/artifacts";
import type { ServedModel } from "../models/manifest";
import { DynamicBatcher, type BatchingPolicy } from "./dynamic-batcher";
import { ModelUnavailableError } from "../problems/problems";
import { MODEL_MEMORY_BUDGET_BYTES } from "./memory-budget";
import { waitForAny } from "./shared-waits";

let engine: InferenceEngine | undefined;

/**
 * Set the engine this host runs models with; each entry point (the Worker's, the Node host's)
 * calls it once, before serving.
 *
 * @example
 * useEngine(workerdEngine);
 */
export function useEngine(hostEngine: InferenceEngine): void {
  engine = hostEngine;
}

/** The host's engine. */
export function currentEngine(): InferenceEngine {
  if (!engine) throw new Error("No inference engine: the entry point must call useEngine() before serving.");
  return engine;
}

/** What a session's creation took: fetching and checking the artifact, then ORT building the session. */
export interface SessionStartup {
  loadMs: number;
  createMs: number;
  /** Created while the isolate started (warmUpRuntime), before any request: nothing to load or create. */
  prewarmed?: true;
}

/** A model resident in this isolate: its session (once created) and the batcher in front of it. */
export interface ResidentModel {
  batcher: DynamicBatcher;
  /** Resolves once the session is created, with the provider it runs on. */
  session: Promise<EngineSession>;
  /** Set once the session is created. */
  startup?: SessionStartup;
  memoryBytes: number;
  lastUsed: number;
}

// Sessions resident in this isolate, by model@version and the providers they may run on.
// Together they stay within MODEL_MEMORY_BUDGET_BYTES: ORT's heap never shrinks, but it
// reuses what a released session freed, so the heap's high-water mark follows the largest set
// of models resident at once.
const sessions = new Map<string, ResidentModel>();
let useCounter = 0; // Date.now() does not advance within a Workers request; a counter orders uses

const keyOf = (model: ServedModel, candidates: readonly ExecutionProvider[]) =>
  `${model.manifest.id}@${model.manifest.version}:${candidates.join(">")}`;

const leastRecentlyUsedFirst = () => [...sessions.entries()].sort(([, a], [, b]) => a.lastUsed - b.lastUsed);

/** Release the least recently used sessions until `bytes` more fit the budget. */
function makeRoom(bytes: number): void {
  let used = [...sessions.values()].reduce((sum, resident) => sum + resident.memoryBytes, 0);
  for (const [key, resident] of leastRecentlyUsedFirst()) {
    if (used + bytes <= MODEL_MEMORY_BUDGET_BYTES) break;
    sessions.delete(key);
    used -= resident.memoryBytes;
    resident.session.then((session) => session.release()).catch(() => undefined);
  }
}

/**
 * The model's resident session for this provider preference, with the batcher in front of it.
 * The session is created on first use (artifact fetched and verified, then loaded by the
 * engine on the first provider that runs it) and then reused; requests that arrive meanwhile
 * queue in the batcher. Creation is per model, so one model's cold start never waits on
 * another's; a failed creation is forgotten so the next request retries it. Creating one
 * releases the least recently used others when the models would no longer fit the isolate's
 * model memory budget together. The policy is the one of the session's first request.
 *
 * @throws ProviderUnavailableError when the preference forces a provider this host lacks
 * @example
 * const { resident } = residentModel(getModel("lenet"), env.MODELS, { maxBatch: 32, windowMs: 2 }, "auto", (p) => ctx.waitUntil(p));
 * const slot = resident.batcher.expect();
 */
export function residentModel(
  model: ServedModel,
  bucket: R2Bucket | undefined,
  policy: BatchingPolicy,
  preference: ProviderPreference,
  waitUntil: (promise: Promise<unknown>) => void,
): { resident: ResidentModel; coldStart: boolean } {
  const engine = currentEngine();
  const candidates = engine.candidates(preference);
  const key = keyOf(model, candidates);
  let resident = sessions.get(key);
  const coldStart = !resident;
  if (!resident) {
    makeRoom(model.manifest.serving.memoryBytes);
    const created = () => createSession(model, bucket, candidates, (startup) => (resident!.startup = startup));
    const adopted = adoptPrewarmed(key);
    const session = adopted ? adopted.catch(created) : created(); // a warm-up that fails is done over by this request
    waitUntil(session.catch(() => undefined)); // every request for the model waits on it, whoever started it
    const batcher = new DynamicBatcher(async (input, count, names) => (await sessionOf(key, session, model)).run(input, count, names), policy);
    resident = { session, batcher, memoryBytes: model.manifest.serving.memoryBytes, lastUsed: 0 };
    if (adopted) resident.startup = { loadMs: 0, createMs: 0, prewarmed: true };
    sessions.set(key, resident);
    session.catch(() => sessions.get(key)?.session === session && sessions.delete(key));
  }
  resident.lastUsed = ++useCounter;
  return { resident, coldStart };
}

/** Longest a batch waits for another request's session creation before it counts as lost. */
export const SESSION_CREATE_TIMEOUT_MS = 60_000;

/**
 * The session a request is creating, awaited by another's batch: if the creator's context ends
 * before the session is made (its continuations never run), the resident entry is forgotten so
 * that the next request creates the session anew, instead of every batch waiting on it forever.
 */
async function sessionOf(key: string, session: Promise<EngineSession>, model: ServedModel): Promise<EngineSession> {
  if (!(await waitForAny([session], SESSION_CREATE_TIMEOUT_MS))) {
    if (sessions.get(key)?.session === session) sessions.delete(key);
    throw new ModelUnavailableError(model.manifest.id, `Creating its session took over ${SESSION_CREATE_TIMEOUT_MS / 1000} s; retry the request.`);
  }
  return session;
}

function createSession(model: ServedModel, bucket: R2Bucket | undefined, candidates: ExecutionProvider[], started: (startup: SessionStartup) => void): Promise<EngineSession> {
  const start = performance.now();
  let loaded = start;
  return loadArtifact(model, bucket)
    .then((bytes) => {
      loaded = performance.now();
      return currentEngine().createSession(bytes, model.manifest, candidates);
    })
    .then((created) => {
      started({ loadMs: loaded - start, createMs: performance.now() - loaded });
      return created;
    });
}

/**
 * Per resident session, its batcher's requests announced and not yet submitted, and batches
 * waiting or running: both return to 0 when traffic stops, whatever the traffic did.
 */
export function batchingStats(): Record<string, { announced: number; batches: number }> {
  return Object.fromEntries([...sessions.entries()].map(([key, resident]) => [key, resident.batcher.stats()]));
}

/** Ids (model@version:providers) of the sessions resident in this isolate, least recently used first. */
export function residentModels(): string[] {
  return leastRecentlyUsedFirst().map(([key]) => key);
}

/**
 * Start ORT's runtime (its WASM instance, about 160 ms on this machine), create the session of a
 * bundled model and run it once. Called from the Worker's global scope, this happens while the
 * isolate starts (on Cloudflare, during the client's TLS handshake) instead of in the first
 * request; it needs no I/O and no timers, which global scope does not allow. If it cannot
 * finish there, the first request finishes it.
 *
 * The session is kept for that model's first request, which adopts it instead of creating its
 * own: in workerd a request's first session creation took 70-120 ms even for LeNet (7 ms in
 * Node), most of the default model's cold start. Until adopted it sits outside the model budget,
 * so the first session created for anything else releases it.
 *
 * @example
 * warmUpRuntime(smallestBundledModel());
 */
export function warmUpRuntime(model: ServedModel): Promise<void> {
  if (model.source.kind !== "bundle") return Promise.resolve();
  const { manifest } = model;
  const candidates: ExecutionProvider[] = ["wasm"];
  warmUp = "starting";
  const session = currentEngine()
    .createSession(new Uint8Array(model.source.bytes), manifest, candidates)
    .then(async (created) => {
      await created.run(new Float32Array(inputSize(manifest)), 1, ["logits"]);
      return created;
    });
  prewarmed = { key: keyOf(model, candidates), session };
  return session.then(
    () => {
      warmUp = "done";
    },
    () => {
      if (prewarmed?.session === session) prewarmed = undefined;
      warmUp = "failed"; // the first request starts the runtime instead
    },
  );
}

let prewarmed: { key: string; session: Promise<EngineSession> } | undefined;

/** The warm-up's session when `key` names it, handed over once; a session for any other key releases it instead. */
function adoptPrewarmed(key: string): Promise<EngineSession> | undefined {
  const held = prewarmed;
  prewarmed = undefined;
  if (held?.key === key) return held.session;
  held?.session.then((session) => session.release()).catch(() => undefined);
  return undefined;
}

let warmUp: "not started" | "starting" | "done" | "failed" = "not started";

/** Where warmUpRuntime stands: "done" at a request's start means the isolate started ORT before it. */
export function runtimeWarmUp(): typeof warmUp {
  return warmUp;
}
