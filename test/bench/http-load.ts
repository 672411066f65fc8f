/**
 * End-to-end POST /classify load against a running Worker: autocannon keeps `connections`
 * one-image requests in flight for `seconds`, cycling through the uploads.
 */
import autocannon from "autocannon";

export interface Upload {
  bytes: Uint8Array<ArrayBuffer>;
  type: string;
}

export interface LoadResult {
  connections: number;
  requests: number;
  errors: number;
  imagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Mean images per model run, as the Worker reported in each answer's timing. */
  meanBatch: number;
}

/**
 * Load one model's classify route and summarise what came back.
 *
 * @example
 * const { imagesPerSecond, p99Ms } = await loadClassify(worker.url, "lenet", uploads, 32, 5);
 */
export async function loadClassify(url: URL, modelId: string, uploads: Upload[], connections: number, seconds: number, query = ""): Promise<LoadResult> {
  let batchSum = 0;
  let answered = 0;
  const route = new URL(`/v1/models/${modelId}/classify${query ? `?${query}` : ""}`, url);
  const result = await autocannon({
    url: route.toString(),
    connections,
    duration: seconds,
    timeout: 60,
    requests: uploads.map((upload) => ({
      method: "POST",
      body: Buffer.from(upload.bytes),
      headers: { "content-type": upload.type },
      onResponse: (status: number, body: string) => {
        if (status !== 200) return;
        batchSum += (JSON.parse(body) as { timing: { batch: { images: number } } }).timing.batch.images;
        answered++;
      },
    })),
  });
  // Requests autocannon abandoned at the end still run in the Worker: wait for them, so that
  // the next measurement starts on an idle isolate.
  const drain = uploads[0]!;
  await fetch(route, { method: "POST", body: drain.bytes, headers: { "content-type": drain.type } }).then((res) => res.arrayBuffer());
  const errors = result.errors + result.timeouts + result.non2xx;
  return {
    connections,
    requests: result.requests.total,
    errors,
    imagesPerSecond: answered / (result.duration || seconds),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanBatch: answered ? batchSum / answered : 0,
  };
}
