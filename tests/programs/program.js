// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A node program for run-programs.sh: a large Map of objects, a large typed
// array and an array of strings on the main thread, a worker thread with a
// Map of its own and a counter in a SharedArrayBuffer, timers that keep
// checking random entries and make garbage for the collector. Requests on
// standard input, one answer line each on standard output:
//   (at start)  READY <digest>
//   verify      OK <digest> ticks=<n> worker=<n>   (timers and worker ran since)
//            or FAIL <reason>
//   quit        BYE
//
// usage: node program.js ENTRIES
'use strict';

const crypto = require('crypto');
const readline = require('readline');
const { Worker } = require('worker_threads');

const ENTRIES = Number(process.argv[2]);
const value = (i) => Math.imul(i, 2654435761 | 0) >>> 0;

const map = new Map();
for (let i = 0; i < ENTRIES; i++)
        map.set('key-' + i, { i, v: value(i), s: 'value-' + value(i) });
const floats = new Float64Array(2 << 20); // 16 MiB
for (let i = 0; i < floats.length; i++)
        floats[i] = i * 1.5 + 0.25;
const strings = Array.from({ length: ENTRIES >> 2 }, (_, i) => 'string-' + i * 3);

function digest() {
        const h = crypto.createHash('sha256');
        let parts = [];
        for (const [k, o] of map) {
                parts.push(`${k}=${o.i},${o.v},${o.s}`);
                if (parts.length === 65536) {
                        h.update(parts.join('\n'));
                        parts = [];
                }
        }
        h.update(parts.join('\n'));
        h.update(new Uint8Array(floats.buffer));
        h.update(strings.join(','));
        return h.digest('hex');
}

const errors = [];
let ticks = 0;
let garbage = [];
const timer = setInterval(() => {
        for (let n = 0; n < 200; n++) {
                const i = Math.floor(Math.random() * ENTRIES);
                const o = map.get('key-' + i);
                if (!o || o.i !== i || o.v !== value(i) || o.s !== 'value-' + value(i))
                        errors.push(`key-${i} is ${JSON.stringify(o)}`);
                const j = Math.floor(Math.random() * floats.length);
                if (floats[j] !== j * 1.5 + 0.25)
                        errors.push(`floats[${j}] is ${floats[j]}`);
                const k = Math.floor(Math.random() * strings.length);
                if (strings[k] !== 'string-' + k * 3)
                        errors.push(`strings[${k}] is ${strings[k]}`);
        }
        // Short-lived garbage keeps the young generation collector busy.
        garbage.push(new Array(1000).fill(ticks));
        if (garbage.length > 100)
                garbage = [];
        ticks++;
}, 10);

const shared = new Int32Array(new SharedArrayBuffer(8));
const worker = new Worker(`
const { parentPort, workerData } = require('worker_threads');
const crypto = require('crypto');
const counter = new Int32Array(workerData);
const own = new Map();
for (let i = 0; i < 100000; i++)
        own.set(i, 'w' + i * 7);
setInterval(() => {
        for (let n = 0; n < 100; n++) {
                const i = Math.floor(Math.random() * 100000);
                if (own.get(i) !== 'w' + i * 7)
                        Atomics.add(counter, 1, 1);
        }
        Atomics.add(counter, 0, 1);
}, 10);
parentPort.on('message', () => {
        const h = crypto.createHash('sha256');
        for (const [k, v] of own)
                h.update(k + '=' + v + ';');
        parentPort.postMessage(h.digest('hex'));
});
`, { eval: true, workerData: shared.buffer });
worker.on('error', (e) => errors.push('worker: ' + e));
worker.on('exit', (code) => errors.push('worker exited with ' + code));

function askWorker() {
        return new Promise((resolve) => {
                const t = setTimeout(() => resolve('no answer'), 60000);
                worker.once('message', (m) => {
                        clearTimeout(t);
                        resolve(m);
                });
                worker.postMessage('digest');
        });
}

function sleep(ms) {
        return new Promise((resolve) => setTimeout(resolve, ms));
}

let reference, workerReference;

async function verify() {
        const t0 = ticks, w0 = Atomics.load(shared, 0);
        const d = digest();
        if (d !== reference)
                return `FAIL digest ${d}, expected ${reference}`;
        const wd = await askWorker();
        if (wd !== workerReference)
                return `FAIL worker digest ${wd}, expected ${workerReference}`;
        const deadline = Date.now() + 60000;
        while (ticks <= t0 || Atomics.load(shared, 0) <= w0) {
                if (Date.now() > deadline)
                        return `FAIL no progress in 60 s (timer ${ticks}, worker ${Atomics.load(shared, 0)})`;
                await sleep(10);
        }
        if (Atomics.load(shared, 1) > 0)
                errors.push(`worker found ${Atomics.load(shared, 1)} bad entries`);
        if (errors.length > 0)
                return `FAIL ${errors.length} errors; first: ${errors[0]}`;
        return `OK ${d} ticks=${ticks} worker=${Atomics.load(shared, 0)}`;
}

async function main() {
        reference = digest();
        workerReference = await askWorker();
        console.log('READY ' + reference);
        const rl = readline.createInterface({ input: process.stdin, terminal: false });
        let queue = Promise.resolve();
        rl.on('line', (line) => {
                queue = queue.then(async () => {
                        line = line.trim();
                        if (line === 'verify') {
                                console.log(await verify());
                        } else if (line === 'quit') {
                                console.log('BYE');
                                clearInterval(timer);
                                await worker.terminate();
                                process.exit(0);
                        } else {
                                console.log(`FAIL unknown request '${line}'`);
                        }
                });
        });
        rl.on('close', () => queue.then(() => process.exit(0)));
}

main();
