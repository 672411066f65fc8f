/**
 * One classifier's state, in a Durable Object with SQLite storage: its versions (each an
 * immutable head), and every example it was taught, as the embedding computed once by the
 * Worker. Methods never await, so each runs whole before the next begins: concurrent
 * fine-tune calls are serialised, every example is counted once, versions strictly increase,
 * and a call that throws leaves nothing behind (its writes happen in one transaction at its end).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { EmptyClassifierError, UnknownClassifierError, UnknownVersionError, TooManyClassesError, outcome, type Outcome, ClassifierExistsError } from "../problems/problems";
import type { Head } from "./head";
import { replaySize, updateHead, type LabelledEmbeddings, type UpdateMetrics } from "./head-trainer";
import { FINETUNE_LIMITS } from "./limits";

export interface ClassifierSpec {
  id: string;
  backbone: { id: string; version: number };
  /** "pretrained": a copy of the backbone's trained head, with its replay exemplars; "empty": no classes yet. */
  init: "empty" | "pretrained";
  head: Head;
  exemplars?: LabelledEmbeddings;
}

export interface ClassifierInfo {
  id: string;
  backbone: { id: string; version: number };
  init: "empty" | "pretrained";
  createdAt: string;
  embeddingSize: number;
  version: number;
  labels: string[];
  /** Examples taught through the API that the latest version has learned (base exemplars excluded). */
  examples: number;
  baseExemplars: number;
}

export interface VersionInfo {
  version: number;
  /** The version it was made from: the previous one, or the one rolled back to. */
  parent: number | null;
  kind: "create" | "finetune" | "rollback";
  createdAt: string;
  labels: string[];
  examples: number;
  metrics?: FinetuneMetrics;
}

export interface FinetuneMetrics extends UpdateMetrics {
  /** Examples in this call. */
  taught: number;
  /** Examples the new version has learned in all, and its classes. */
  examples: number;
  classes: number;
  updateMs: number;
}

export interface HeadVersion {
  version: number;
  backbone: { id: string; version: number };
  head: Head;
}

interface VersionRow extends Record<string, SqlStorageValue> {
  version: number;
  parent: number | null;
  kind: string;
  labels: string;
  weight: ArrayBuffer;
  bias: ArrayBuffer;
  examples: number;
  metrics: string | null;
  created_at: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS classifier (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL, backbone TEXT NOT NULL, backbone_version INTEGER NOT NULL,
  embedding_size INTEGER NOT NULL, init TEXT NOT NULL, created_at TEXT NOT NULL, base_exemplars INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
  version INTEGER PRIMARY KEY, parent INTEGER, kind TEXT NOT NULL, labels TEXT NOT NULL,
  weight BLOB NOT NULL, bias BLOB NOT NULL, examples INTEGER NOT NULL, metrics TEXT, created_at TEXT NOT NULL
);
-- version: the version that added the example; active: whether the latest version's lineage includes it.
CREATE TABLE IF NOT EXISTS examples (
  id INTEGER PRIMARY KEY, label TEXT NOT NULL, version INTEGER NOT NULL, base INTEGER NOT NULL,
  active INTEGER NOT NULL, embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS examples_by_label ON examples (active, label, id);
`;

const blob = (values: Float32Array) => values.slice().buffer;

export class ClassifierObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(SCHEMA);
  }

  /** Create the classifier: version 1 is its starting head. */
  create(spec: ClassifierSpec): Outcome<ClassifierInfo> {
    return outcome(() => {
      if (this.row()) throw new ClassifierExistsError(spec.id);
      const now = new Date().toISOString();
      const exemplars = spec.exemplars ?? { embeddings: new Float32Array(0), labels: [] };
      const d = spec.head.embeddingSize;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec(
          "INSERT INTO classifier VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
          spec.id, spec.backbone.id, spec.backbone.version, d, spec.init, now, exemplars.labels.length,
        );
        this.insertVersion(1, null, "create", spec.head, 0, undefined, now);
        exemplars.labels.forEach((label, i) => {
          this.sql.exec("INSERT INTO examples (label, version, base, active, embedding) VALUES (?, 1, 1, 1, ?)", label, blob(exemplars.embeddings.subarray(i * d, (i + 1) * d)));
        });
      });
      return this.info();
    });
  }

  /** Delete the classifier with its versions and examples; the id can be created anew. */
  remove(): Outcome<ClassifierInfo> {
    return outcome(() => {
      const info = this.info();
      this.ctx.storage.transactionSync(() => {
        for (const table of ["examples", "versions", "classifier"]) this.sql.exec(`DELETE FROM ${table}`);
      });
      return info;
    });
  }

  describe(): Outcome<ClassifierInfo> {
    return outcome(() => this.info());
  }

  /** Every version, newest first, without weights. */
  versions(): Outcome<VersionInfo[]> {
    return outcome(() => {
      this.info();
      return this.sql
        .exec<VersionRow>("SELECT version, parent, kind, labels, examples, metrics, created_at FROM versions ORDER BY version DESC")
        .toArray()
        .map(versionInfo);
    });
  }

  /** A version's head (the latest when `version` is undefined), for classifying. */
  head(version?: number): Outcome<HeadVersion> {
    return outcome(() => {
      const info = this.info();
      const head = headOf(this.versionRow(version ?? info.version), info.embeddingSize);
      if (!head.labels.length) throw new EmptyClassifierError(info.id);
      return { version: version ?? info.version, backbone: info.backbone, head };
    });
  }

  /**
   * Learn from a call's examples: a new version, made from the latest by updateHead with a
   * class-balanced replay of stored examples, saved with the examples in one transaction.
   */
  learn(taught: LabelledEmbeddings): Outcome<{ version: number; labels: string[]; metrics: FinetuneMetrics }> {
    return outcome(() => {
      const info = this.info();
      const latest = this.versionRow(info.version);
      const current = headOf(latest, info.embeddingSize);
      const classes = new Set([...current.labels, ...taught.labels]).size;
      if (classes > FINETUNE_LIMITS.maxClasses) throw new TooManyClassesError(info.id, classes, FINETUNE_LIMITS.maxClasses);

      const version = info.version + 1;
      const started = performance.now();
      const replay = this.sampleReplay(current.labels, replaySize(taught.labels.length), version, info.embeddingSize);
      const { head, metrics } = updateHead(current, taught, replay);
      const examples = latest.examples + taught.labels.length;
      const full: FinetuneMetrics = {
        ...metrics,
        taught: taught.labels.length,
        examples,
        classes: head.labels.length,
        updateMs: Math.round((performance.now() - started) * 1000) / 1000,
      };
      const d = info.embeddingSize;
      this.ctx.storage.transactionSync(() => {
        taught.labels.forEach((label, i) => {
          this.sql.exec("INSERT INTO examples (label, version, base, active, embedding) VALUES (?, ?, 0, 1, ?)", label, version, blob(taught.embeddings.subarray(i * d, (i + 1) * d)));
        });
        this.insertVersion(version, info.version, "finetune", head, examples, full, new Date().toISOString());
      });
      return { version, labels: head.labels, metrics: full };
    });
  }

  /**
   * Roll back to an earlier version: a new version with that version's head, whose examples
   * are that version's (those taught since are kept, but no longer replayed or counted).
   */
  rollback(to: number): Outcome<VersionInfo> {
    return outcome(() => {
      const info = this.info();
      const target = this.versionRow(to);
      const version = info.version + 1;
      this.ctx.storage.transactionSync(() => {
        this.insertVersion(version, to, "rollback", headOf(target, info.embeddingSize), target.examples, undefined, new Date().toISOString());
        this.sql.exec(
          `WITH RECURSIVE lineage(v) AS (
             SELECT ? UNION ALL SELECT versions.parent FROM versions JOIN lineage ON versions.version = lineage.v WHERE versions.parent IS NOT NULL
           )
           UPDATE examples SET active = (version IN (SELECT v FROM lineage))`,
          version,
        );
      });
      return versionInfo(this.versionRow(version));
    });
  }

  private row() {
    return this.sql.exec<{ id: string; backbone: string; backbone_version: number; embedding_size: number; init: string; created_at: string; base_exemplars: number }>(
      "SELECT * FROM classifier",
    ).toArray()[0];
  }

  private info(): ClassifierInfo {
    const row = this.row();
    if (!row) throw new UnknownClassifierError(this.ctx.id.name ?? "?");
    const latest = this.sql.exec<{ version: number; labels: string; examples: number }>(
      "SELECT version, labels, examples FROM versions ORDER BY version DESC LIMIT 1",
    ).one();
    return {
      id: row.id,
      backbone: { id: row.backbone, version: row.backbone_version },
      init: row.init as ClassifierInfo["init"],
      createdAt: row.created_at,
      embeddingSize: row.embedding_size,
      version: latest.version,
      labels: JSON.parse(latest.labels) as string[],
      examples: latest.examples,
      baseExemplars: row.base_exemplars,
    };
  }

  private versionRow(version: number): VersionRow {
    const row = this.sql.exec<VersionRow>("SELECT * FROM versions WHERE version = ?", version).toArray()[0];
    if (!row) {
      const latest = this.sql.exec<{ v: number }>("SELECT MAX(version) AS v FROM versions").one().v;
      throw new UnknownVersionError(this.row()!.id, version, latest);
    }
    return row;
  }

  private insertVersion(version: number, parent: number | null, kind: VersionInfo["kind"], head: Head, examples: number, metrics: FinetuneMetrics | undefined, at: string) {
    this.sql.exec(
      "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      version, parent, kind, JSON.stringify(head.labels), blob(head.weight), blob(head.bias), examples,
      metrics ? JSON.stringify(metrics) : null, at,
    );
  }

  /**
   * `count` active examples, class-balanced over the head's classes: a uniformly drawn class,
   * then the first example at or after a uniformly drawn id in that class's id range. Each draw
   * is one index seek, so the cost follows `count`, not the number stored. Seeded by the
   * version being made, so a call's replay is reproducible.
   */
  private sampleReplay(labels: string[], count: number, seed: number, d: number): LabelledEmbeddings {
    const ranges = labels
      .map((label) => ({ label, ...this.sql.exec<{ lo: number | null; hi: number | null }>("SELECT MIN(id) AS lo, MAX(id) AS hi FROM examples WHERE active = 1 AND label = ?", label).one() }))
      .filter((range): range is { label: string; lo: number; hi: number } => range.lo !== null && range.hi !== null);
    if (!ranges.length) return { embeddings: new Float32Array(0), labels: [] };
    const random = mulberry32(seed);
    const embeddings = new Float32Array(count * d);
    const drawn: string[] = [];
    for (let i = 0; i < count; i++) {
      const { label, lo, hi } = ranges[Math.floor(random() * ranges.length)]!;
      const at = lo + Math.floor(random() * (hi - lo + 1));
      const row = this.sql.exec<{ embedding: ArrayBuffer }>(
        "SELECT embedding FROM examples WHERE active = 1 AND label = ? AND id >= ? ORDER BY id LIMIT 1", label, at,
      ).one();
      embeddings.set(new Float32Array(row.embedding), i * d);
      drawn.push(label);
    }
    return { embeddings, labels: drawn };
  }
}

function headOf(row: VersionRow, embeddingSize: number): Head {
  return {
    labels: JSON.parse(row.labels) as string[],
    embeddingSize,
    weight: new Float32Array(row.weight),
    bias: new Float32Array(row.bias),
  };
}

function versionInfo(row: VersionRow): VersionInfo {
  return {
    version: row.version,
    parent: row.parent,
    kind: row.kind as VersionInfo["kind"],
    createdAt: row.created_at,
    labels: JSON.parse(row.labels) as string[],
    examples: row.examples,
    ...(row.metrics ? { metrics: JSON.parse(row.metrics) as FinetuneMetrics } : {}),
  };
}

/** A small seeded PRNG (uniform in [0, 1)), so replay draws are reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
