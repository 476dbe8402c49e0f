// Run ONNX files in ONNX Runtime (npm onnxruntime-node, CPU) for tests/onnx/test_onnx.py.
//
//   node tests/onnx/ort_run.cjs JOBS.json     (NODE_PATH: where onnxruntime-node is installed)
//
// JOBS.json: [{"model": "m.onnx", "input": "x.bin", "shape": [N, ...], "output": "y.bin", "dtype": "int32"?, "lengths": "l.bin"?}, ...];
// x.bin holds the float32 (or int32) input (little-endian, row-major), y.bin receives the "logits" output the same way, and
// y.bin.json its shape.  Exit 0 when every job ran; else one line on stderr and exit 1.
"use strict";
const fs = require("fs");
const ort = require("onnxruntime-node");

(async () => {
  const jobs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  for (const job of jobs) {
    const session = await ort.InferenceSession.create(job.model, { intraOpNumThreads: 2, interOpNumThreads: 1 });
    const buf = fs.readFileSync(job.input);
    const int32 = job.dtype === "int32"; // token ids
    const data = int32 ? new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4)
                       : new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const feeds = { input: new ort.Tensor(int32 ? "int32" : "float32", data, job.shape) };
    if (job.lengths) { // token ids come with each sequence's length
      const lb = fs.readFileSync(job.lengths);
      feeds.lengths = new ort.Tensor("int32", new Int32Array(lb.buffer, lb.byteOffset, lb.byteLength / 4), [job.shape[0]]);
    }
    const out = await session.run(feeds);
    const y = out.logits;
    fs.writeFileSync(job.output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    fs.writeFileSync(job.output + ".json", JSON.stringify(y.dims));
  }
})().catch((e) => {
  console.error("ort_run: " + e.message.split("\n")[0]);
  process.exit(1);
});
