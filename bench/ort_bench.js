// ONNX Runtime's side of `make bench-ort`: inference img/s of one exported model at the batch
// sizes given, timed as bin/hlr-bench times libhlr (a warm-up, then the median of timed windows
// of repeated runs on the same input), with intra-op threads = the thread count and sequential
// execution.  Prints one JSON object.
//
//   node bench/ort_bench.js MODEL.onnx THREADS BATCHES(1,16,256) WINDOWS WINDOW_SECONDS
'use strict';
const ort = require('onnxruntime-node');

async function main() {
    const [path, threads, batches, windows, secs] = process.argv.slice(2);
    const session = await ort.InferenceSession.create(path, {
        intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all',
    });
    const out = {lib: 'onnxruntime', version: ort.env.versions.common, threads: Number(threads), infer_img_s: {}};
    for (const b of batches.split(',').map(Number)) {
        const data = new Float32Array(b * 28 * 28);
        for (let i = 0; i < data.length; i++)
            data[i] = (i * 7919 % 1000) / 1000;
        const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, [b, 1, 28, 28])};
        const warm = Date.now();
        while (Date.now() - warm < 300)
            await session.run(feeds);
        const rates = [];
        for (let w = 0; w < Number(windows); w++) {
            let n = 0;
            const t0 = process.hrtime.bigint();
            let t = 0;
            do {
                await session.run(feeds);
                n += b;
                t = Number(process.hrtime.bigint() - t0) / 1e9;
            } while (t < Number(secs));
            rates.push(n / t);
        }
        rates.sort((a, c) => a - c);
        out.infer_img_s[b] = Math.round(rates[Math.floor(rates.length / 2)]);
    }
    console.log(JSON.stringify(out));
}

main().catch((e) => {
    console.error('ort_bench.js: ' + e.message);
    process.exit(1);
});
