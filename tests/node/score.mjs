// Scores log records with Logarithm's detector component in Node.js, through
// the JavaScript bindings `jco transpile` generated for it.
//
// Usage: node score.mjs [--packed] [--explain-anomalies] TRANSPILED_DIR MODEL_FILE PASSPHRASE < records.ndjson
//
// `--packed` scores through `score-packed` (the records' text in one string,
// lengths in UTF-8 bytes) instead of `score-batch`; `--explain-anomalies`
// calls `set-explain(false)` first, so that normal verdicts have no terms.
//
// TRANSPILED_DIR is the output directory of `jco transpile` (it must lie
// under this directory, so that the generated code's imports of
// `@bytecodealliance/preview2-shim` resolve to node_modules here). Each input
// line is one record, as `LogRecord` serializes:
//
//   {"timestamp_us": number|null, "source": string, "host": string,
//    "priority": number|null, "message": string}
//
// Each output line is the verdict on the record of the same line:
//
//   {"score": number, "score_bits": string, "anomalous": bool, "report": string, "repeat": object|null, "burst": object|null,
//    "terms": [{"text": string, "weight": number, "unseen": bool}]}
//
// `score` is the f64 the component returned, printed by JSON.stringify (the
// shortest decimal that round-trips); `score_bits` is the same f64's IEEE 754
// bits as 16 hex digits, so that a reader can compare it bit for bit without
// trusting its own decimal parser. `weight` is an f32 widened to a JS number.
//
// Exit status: 0 when every record was scored, 2 when the detector refused the
// model (wrong key, corrupt file, ...: the error payload is printed to stderr),
// 1 on any other failure.

import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

/** Records per `score-batch` call: one boundary crossing per batch. */
const BATCH = 500;

/** The `scoring` interface exported by the transpiled component in `dir`. */
async function loadScoring(dir) {
  const entries = readdirSync(dir).filter((name) => name.endsWith('.js'));
  if (entries.length !== 1) {
    throw new Error(`expected one transpiled component (*.js) in ${dir}, found ${entries.length}`);
  }
  const component = await import(pathToFileURL(resolve(dir, entries[0])).href);
  const scoring = component['logarithm:detector/scoring@0.6.0'];
  if (!scoring) {
    throw new Error(`${entries[0]} does not export logarithm:detector/scoring@0.6.0`);
  }
  return scoring;
}

/** An optional integer field of an input record, checked against [min, max]. */
function optionalInteger(record, field, min, max) {
  const value = record[field];
  if (value === null || value === undefined) {
    return undefined;
  }
  // JSON numbers become f64: beyond 2^53 they would silently lose digits,
  // and jco wraps out-of-range integers instead of refusing them.
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`${field} must be an integer in [${min}, ${max}] or null, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The WIT `log-record` (as jco maps it) for one input line. */
function logRecord(line) {
  const record = JSON.parse(line);
  const timestamp = optionalInteger(record, 'timestamp_us', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return {
    // option<s64> is a bigint or undefined.
    timestampUs: timestamp === undefined ? undefined : BigInt(timestamp),
    source: record.source,
    host: record.host,
    // option<u8> is a number or undefined.
    priority: optionalInteger(record, 'priority', 0, 255),
    message: record.message,
  };
}

const f64 = new DataView(new ArrayBuffer(8));

/** The IEEE 754 bits of `x` as 16 hex digits. */
function bits(x) {
  f64.setFloat64(0, x);
  return f64.getBigUint64(0).toString(16).padStart(16, '0');
}

/** The UTF-8 length of a string, which `score-packed` counts in. */
const utf8Length = (s) => Buffer.byteLength(s, 'utf8');

/** `score-packed`'s argument for a batch of `log-record`s. */
function packed(batch) {
  const lengths = new Uint32Array(3 * batch.length);
  const timestamps = new BigInt64Array(batch.length);
  const meta = new Uint16Array(batch.length);
  batch.forEach((r, i) => {
    lengths.set([utf8Length(r.source), utf8Length(r.host), utf8Length(r.message)], 3 * i);
    // meta: bits 0-7 the priority, bit 8 it has one, bit 9 it has a timestamp.
    meta[i] = (r.priority === undefined ? 0 : 0x100 | r.priority) | (r.timestampUs === undefined ? 0 : 0x200);
    timestamps[i] = r.timestampUs === undefined ? 0n : r.timestampUs;
  });
  return { text: batch.map((r) => r.source + r.host + r.message).join(''), lengths, timestamps, meta };
}

/** The verdicts of a `score-packed` result: a score alone is a quiet verdict. */
function unpacked({ scores, details }) {
  const verdicts = Array.from(scores, (score) => ({ score, anomalous: false, terms: [], report: 'quiet', repeat: undefined, burst: undefined }));
  for (const [i, verdict] of details) {
    verdicts[i] = verdict;
  }
  return verdicts;
}

/** One output line for a verdict. */
function verdictLine(v) {
  const terms = v.terms.map((t) => ({ text: t.text, weight: t.weight, unseen: t.unseen }));
  // u64 arrives as a BigInt, which JSON.stringify refuses.
  const repeat = v.repeat === undefined ? null : { template: v.repeat.template, count: Number(v.repeat.count), first_timestamp_us: v.repeat.firstTimestampUs === undefined ? null : Number(v.repeat.firstTimestampUs) };
  const burst = v.burst === undefined ? null : { template: v.burst.template, count: Number(v.burst.count), window_secs: v.burst.windowSecs, usual: v.burst.usual };
  return JSON.stringify({ score: v.score, score_bits: bits(v.score), anomalous: v.anomalous, terms, report: v.report, repeat, burst }) + '\n';
}

async function main(args) {
  const flags = new Set(args.filter((a) => a.startsWith('--')));
  const [dir, modelFile, passphrase] = args.filter((a) => !a.startsWith('--'));
  const unknown = [...flags].filter((f) => f !== '--packed' && f !== '--explain-anomalies');
  if (passphrase === undefined || unknown.length > 0) {
    console.error('usage: node score.mjs [--packed] [--explain-anomalies] TRANSPILED_DIR MODEL_FILE PASSPHRASE < records.ndjson');
    return 1;
  }
  const { Detector } = await loadScoring(dir);
  const model = new Uint8Array(readFileSync(modelFile));
  let detector;
  try {
    detector = Detector.create(model, passphrase);
  } catch (e) {
    // A `result` error is thrown as a ComponentError whose payload is the
    // WIT `error` variant: {tag: 'wrong-key', val: {expected, given}}, ...
    if (e?.payload === undefined) {
      throw e;
    }
    console.error(`score.mjs: cannot load ${modelFile}: ${JSON.stringify(e.payload)}`);
    return 2;
  }
  try {
    if (flags.has('--explain-anomalies')) {
      detector.setExplain(false);
    }
    const verdicts = flags.has('--packed') ? (batch) => unpacked(detector.scorePacked(packed(batch))) : (batch) => detector.scoreBatch(batch);
    const score = (batch) => process.stdout.write(verdicts(batch).map(verdictLine).join(''));
    let batch = [];
    for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
      batch.push(logRecord(line));
      if (batch.length === BATCH) {
        score(batch);
        batch = [];
      }
    }
    score(batch);
  } finally {
    detector[Symbol.dispose]();
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
