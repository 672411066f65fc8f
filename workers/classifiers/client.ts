/** The Worker's side of a classifier's Durable Object: one stub per classifier id. */
import type { Env } from "../env";
import { UnknownClassifierError, unwrap, type Outcome } from "../problems/problems";
import type { ClassifierObject } from "./classifier-object";

/**
 * The Durable Object of the classifier with this id (created on first use; it holds nothing
 * until `create` is called on it).
 *
 * @example
 * const info = await call("pets", classifierObject(env, "pets").describe());
 */
export function classifierObject(env: Env, id: string): DurableObjectStub<ClassifierObject> {
  return env.CLASSIFIERS.get(env.CLASSIFIERS.idFromName(id));
}

/**
 * The value of a Durable Object call, or its problem thrown as a ProblemError (naming the
 * classifier, which the object cannot always name itself).
 */
export async function call<T>(id: string, pending: Promise<unknown>): Promise<T> {
  const result = (await pending) as Outcome<T>;
  if (result.problem?.slug === "unknown-classifier") throw new UnknownClassifierError(id);
  return unwrap(result);
}
