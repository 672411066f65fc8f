/**
 * The models registered through the API (POST /v1/models): one Durable Object for the whole
 * deployment, with SQLite storage, holding each id's versions and their manifests (the files
 * are in R2). A Durable Object and not KV: a version number must be handed out once even when
 * two uploads of an id race, and a registration or a delete must be seen by the next read
 * anywhere, where KV takes up to a minute to spread and has no transactions. Every isolate
 * reads it through a short cache (registry-client.ts), so one read serves many requests.
 *
 * Methods never await: each runs whole before the next, so versions strictly increase and are
 * never reused, even after a delete (isolates cache sessions by id@version).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import type { ModelManifest } from "../models/manifest";

/** One registered version: its manifest and where its files are in the MODELS bucket. */
export interface Registration {
  manifest: ModelManifest;
  /** R2 key prefix of its files: registered/<id>/<version>/. */
  prefix: string;
  registeredAt: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ids (id TEXT PRIMARY KEY, last_version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
  id TEXT NOT NULL, version INTEGER NOT NULL, manifest TEXT NOT NULL, prefix TEXT NOT NULL,
  registered_at TEXT NOT NULL, PRIMARY KEY (id, version)
);`;

export class ModelRegistry extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
  }

  /** The next version of `id`, handed out once: its files go under registered/<id>/<version>/ before commit(). */
  reserve(id: string): number {
    const row = this.sql.exec<{ last_version: number }>("SELECT last_version FROM ids WHERE id = ?", id).toArray()[0];
    const version = (row?.last_version ?? 0) + 1;
    this.sql.exec("INSERT INTO ids (id, last_version) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET last_version = excluded.last_version", id, version);
    return version;
  }

  /** Record a reserved version, its files written: from now on every read sees it. */
  commit(manifest: ModelManifest, prefix: string): Registration {
    const registeredAt = new Date().toISOString();
    this.sql.exec("INSERT INTO versions (id, version, manifest, prefix, registered_at) VALUES (?, ?, ?, ?, ?)", manifest.id, manifest.version, JSON.stringify(manifest), prefix, registeredAt);
    return { manifest, prefix, registeredAt };
  }

  /** Every registered version of every id, newest first within an id. */
  list(): Registration[] {
    return this.sql
      .exec<{ manifest: string; prefix: string; registered_at: string }>("SELECT manifest, prefix, registered_at FROM versions ORDER BY id, version DESC")
      .toArray()
      .map((row) => ({ manifest: JSON.parse(row.manifest) as ModelManifest, prefix: row.prefix, registeredAt: row.registered_at }));
  }

  /** Forget every version of `id` (its version counter stays); returns what was forgotten. */
  remove(id: string): Registration[] {
    const removed = this.list().filter((registration) => registration.manifest.id === id);
    this.sql.exec("DELETE FROM versions WHERE id = ?", id);
    return removed;
  }
}
