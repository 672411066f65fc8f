/** Admitting a request to the model it is for, with the model's policy (models/<id>/config.json, `admission`). */
import type { ServedModel } from "../models/manifest";
import type { Ticket } from "./admission";
import { admissionPolicy } from "./policy";

/**
 * Assign a request's ticket to a model, refusing it (503) when the model's queue is full or the
 * wait ahead is too long for the model or for the client's deadline. Call it before the body is read.
 *
 * @throws OverloadedError (queue-full, queue-time), DeadlineExceededError
 * @example
 * admitToModel(c.get("admission"), model);
 * const images = readImages(c.req.raw);
 */
export function admitToModel(ticket: Ticket | undefined, model: ServedModel): void {
  ticket?.forModel(`${model.manifest.id}@${model.manifest.version}`, admissionPolicy(model.config?.admission));
}
