/**
 * A classifier head: the linear layer over a backbone's embedding that turns it into logits.
 * Served models carry their trained one in head.bin (scripts/training/head.py); fine-tuned
 * classifiers keep theirs, version by version, in their Durable Object.
 */

export interface Head {
  labels: string[];
  embeddingSize: number;
  /** Row-major [labels.length, embeddingSize]. */
  weight: Float32Array;
  bias: Float32Array;
}

/**
 * Logits of a batch of embeddings (row-major [count, embeddingSize]): row i is W·e_i + b.
 *
 * @example
 * headLogits({ labels: ["a", "b"], embeddingSize: 2, weight: new Float32Array([1, 0, 0, 1]), bias: new Float32Array(2) }, new Float32Array([3, 4]));
 * // Float32Array [3, 4]
 */
export function headLogits(head: Head, embeddings: Float32Array): Float32Array {
  const d = head.embeddingSize;
  const classes = head.labels.length;
  const count = embeddings.length / d;
  const logits = new Float32Array(count * classes);
  for (let i = 0; i < count; i++) {
    const e = embeddings.subarray(i * d, (i + 1) * d);
    for (let c = 0; c < classes; c++) {
      let sum = head.bias[c]!;
      const w = head.weight.subarray(c * d, (c + 1) * d);
      for (let j = 0; j < d; j++) sum += w[j]! * e[j]!;
      logits[i * classes + c] = sum;
    }
  }
  return logits;
}

/** A served model's head.bin: its trained head and the replay exemplars of each class. */
export interface HeadFile {
  head: Head;
  /** Row-major [labels.length * exemplarsPerClass, embeddingSize], class-major. */
  exemplars: Float32Array;
  exemplarLabels: string[];
}

/**
 * Split head.bin into its parts (layout in scripts/training/head.py).
 *
 * @example
 * const { head, exemplars } = parseHeadFile(bytes, manifest.labels, manifest.head);
 */
export function parseHeadFile(
  bytes: Uint8Array,
  labels: readonly string[],
  layout: { embeddingSize: number; exemplarsPerClass: number },
): HeadFile {
  const d = layout.embeddingSize;
  const classes = labels.length;
  const floats = new Float32Array(bytes.slice().buffer);
  const exemplarRows = classes * layout.exemplarsPerClass;
  if (floats.length !== classes * d + classes + exemplarRows * d) {
    throw new Error(`head.bin holds ${floats.length} floats, not the ${classes * d + classes + exemplarRows * d} its manifest implies`);
  }
  return {
    head: {
      labels: [...labels],
      embeddingSize: d,
      weight: floats.slice(0, classes * d),
      bias: floats.slice(classes * d, classes * d + classes),
    },
    exemplars: floats.slice(classes * d + classes),
    exemplarLabels: labels.flatMap((label) => Array<string>(layout.exemplarsPerClass).fill(label)),
  };
}
