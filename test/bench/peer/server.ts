/**
 * The native peer of the Worker for issue 18's benchmark: what a user would build instead in a
 * few lines of Node. `node:http` takes the upload, sharp decodes and resizes it, native
 * onnxruntime-node (one thread) runs the model, and the top 5 go back as JSON, in the same shape
 * as the Worker's answer (its `timing.batch` is always 1: no batching here).
 *
 *   node test/bench/peer/server.ts models/lenet/1 8790
 *
 * It prints "listening on <url>" once the session is ready; any POST path classifies.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import sharp from "sharp";

const [modelDir, port = "0"] = process.argv.slice(2);
if (!modelDir) throw new Error("usage: server.ts <model folder> [port]");
const manifest = JSON.parse(readFileSync(join(modelDir, "manifest.json"), "utf8")) as {
  labels: string[];
  input: { channels: number; height: number; width: number; scale: number; mean: number[]; std: number[] };
};
const { channels, height, width, scale, mean, std } = manifest.input;
const session = await ort.InferenceSession.create(join(modelDir, "model.onnx"), { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: "sequential" });
sharp.concurrency(1); // one libvips thread per image, as the Worker has one thread

async function classify(body: Buffer): Promise<{ label: string; index: number; probability: number }[]> {
  const image = sharp(body).resize(width, height, { fit: "cover" });
  const { data } = await (channels === 1 ? image.greyscale() : image.removeAlpha()).toColourspace(channels === 1 ? "b-w" : "srgb").raw().toBuffer({ resolveWithObject: true });
  const input = new Float32Array(channels * height * width);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < height * width; i++) input[c * height * width + i] = (data[i * channels + c]! * scale - mean[c]!) / std[c]!;
  }
  const { logits } = await session.run({ input: new ort.Tensor("float32", input, [1, channels, height, width]) });
  const values = logits!.data as Float32Array;
  const max = Math.max(...values);
  const exp = Array.from(values, (v) => Math.exp(v - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp
    .map((e, index) => ({ label: manifest.labels[index]!, index, probability: e / sum }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, 5);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    classify(Buffer.concat(chunks)).then(
      (predictions) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ results: [{ image: "body", predictions }], timing: { batch: { images: 1, requests: 1 } } }));
      },
      (err: Error) => {
        res.writeHead(422, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: err.message }));
      },
    );
  });
});
server.listen(Number(port), "127.0.0.1", () => {
  const address = server.address() as { port: number };
  console.log(`listening on http://127.0.0.1:${address.port}/`);
});
