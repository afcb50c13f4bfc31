// Generates the shared test vectors of docs/format.md:
//   docs/vectors/format-v1.json   read by test/format.test.ts (host)
//   devs/test/vectors.gen.ts      the same data as a DeviceScript module for the firmware tests
// Deterministic: fixed ids, keys and inputs, no clock, no randomness, so a rerun is a no-op
// and test/format.test.ts can check that both files are up to date.
// Run: npx tsx src/tools/gen-vectors.ts
import { createHash } from "node:crypto";
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  ALARM_TYPE, BOOT_REASON, KIND, SFLAG_CONFIG_MISMATCH, SFLAG_NO_READING, TIME_SOURCE,
  blockKey, chainHeads, deriveAckKey, encodeAck, encodeBatch, encodeBlock, encodeLogAck,
  encodeLogMeta, encodeRecord, genesisHead, type LogRecord,
} from "../format/index.js";

export const JSON_PATH = "docs/vectors/format-v1.json";
export const DS_PATH = "devs/test/vectors.gen.ts";

const DEVID = "c01d7ace00000001";
// 00 01 02 .. 1f: obviously a test key, never a real one.
const DEVKEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const CONFIG_TEXT = "band=2..8 period=60";
const CONFIG_HASH = createHash("sha256").update(CONFIG_TEXT, "utf8").digest().subarray(0, 16);

// The chain, from seq 0. Values cover sign extension (negative tc/cj, the 19- and 14-bit
// extremes, -1), faulted samples (sr set, NO_READING, CONFIG_MISMATCH), uptimes above 2^31,
// a utc above 2^32, and an unknown kind that readers must skip by `len`. The gap record's
// numbers are encoding inputs only; they do not describe evictions in this chain.
const S = KIND.sample;
const RECORDS: LogRecord[] = [
  { seq: 0, kind: KIND.boot, uptime: 812, boot: 1, reason: BOOT_REASON.powerOn },
  { seq: 1, kind: KIND.config, uptime: 815, hash: CONFIG_HASH },
  { seq: 2, kind: KIND.time, uptime: 4021, utc: 1767225600123, source: TIME_SOURCE.simulator },
  { seq: 3, kind: S, uptime: 60000, tc: 3200, cj: 1600, sr: 0, sflags: 0 },
  { seq: 4, kind: S, uptime: 120000, tc: 640, cj: 1472, sr: 0, sflags: 0 },
  { seq: 5, kind: S, uptime: 180000, tc: -2624, cj: -336, sr: 0, sflags: 0 },
  { seq: 6, kind: S, uptime: 240000, tc: 262143, cj: 1580, sr: 0x01, sflags: 0 },
  { seq: 7, kind: S, uptime: 300000, tc: 0, cj: 0, sr: 0, sflags: SFLAG_NO_READING },
  { seq: 8, kind: KIND.alarm, uptime: 300001, type: ALARM_TYPE.aboveBand, tc: 1100 },
  { seq: 9, kind: S, uptime: 360000, tc: 1152, cj: 1600, sr: 0, sflags: SFLAG_CONFIG_MISMATCH },
  { seq: 10, kind: KIND.alarm, uptime: 360001, type: ALARM_TYPE.backInBand, tc: 960 },
  { seq: 11, kind: KIND.gap, uptime: 400000, first: 4096, last: 8191 },
  { seq: 12, kind: KIND.boot, uptime: 150, boot: 2, reason: BOOT_REASON.watchdog },
  { seq: 13, kind: KIND.time, uptime: 2500, utc: 1767232800000, source: TIME_SOURCE.gps },
  { seq: 14, kind: S, uptime: 3000000000, tc: -262144, cj: -8192, sr: 0, sflags: 0 },
  { seq: 15, kind: KIND.alarm, uptime: 3000000001, type: ALARM_TYPE.belowBand, tc: -128 },
  { seq: 16, kind: 9, uptime: 3000060000, payload: Buffer.from("a5c3", "hex") },
  { seq: 17, kind: S, uptime: 4294967295, tc: -1, cj: -1, sr: 0x02, sflags: 0 },
];
const BLOCK = { n: 42, from: 3, to: 11 }; // exactly 192 bytes: the largest block allowed
const BATCH = { from: 12, to: 17 }; // starts mid-chain, so prev_head is not the genesis head

type Json = number | string | Json[] | { [k: string]: Json };

/** A record as vector fields: the typed object with buffers as hex and utc also split as on the wire. */
function recordFields(r: LogRecord): { [k: string]: Json } {
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(r)) {
    out[k] = Buffer.isBuffer(v) ? v.toString("hex") : (v as number);
    if (k === "utc") {
      out.utcLo = (v as number) % 0x100000000;
      out.utcHi = Math.floor((v as number) / 0x100000000);
    }
  }
  return out;
}

export function buildVectorObject(): { [k: string]: Json } {
  const devkey = DEVKEY;
  const genesis = genesisHead(DEVID);
  const bytes = RECORDS.map(encodeRecord);
  const heads = chainHeads(genesis, bytes);
  const headBefore = (seq: number) => (seq === 0 ? genesis : heads[seq - 1]);
  const span = (from: number, to: number) => bytes.slice(from, to + 1);

  const block = encodeBlock({ firstSeq: BLOCK.from, prevHead: headBefore(BLOCK.from), records: span(BLOCK.from, BLOCK.to) });
  const batch = encodeBatch({
    devid: DEVID, devkey, firstSeq: BATCH.from, prevHead: headBefore(BATCH.from), records: span(BATCH.from, BATCH.to),
  });
  const ack = encodeAck({ devid: DEVID, devkey, ackSeq: BATCH.to, head: heads[BATCH.to] });
  const ackNone = encodeAck({ devid: DEVID, devkey, ackSeq: null });
  const hex = (b: Buffer) => b.toString("hex");

  return {
    version: 1,
    devid: DEVID,
    devkey: hex(devkey),
    ackkey: hex(deriveAckKey(devkey)),
    genesis: hex(genesis),
    configText: hex(Buffer.from(CONFIG_TEXT, "utf8")),
    records: RECORDS.map((r, i) => ({ ...recordFields(r), hex: hex(bytes[i]), head: hex(heads[i]) })),
    block: { n: BLOCK.n, key: blockKey(BLOCK.n), firstSeq: BLOCK.from, lastSeq: BLOCK.to, hex: hex(block) },
    meta: { firstBlock: 40, lastBlock: BLOCK.n, boot: 2, hex: hex(encodeLogMeta({ firstBlock: 40, lastBlock: BLOCK.n, boot: 2 })) },
    lgack: { ackSeq: 2, hex: hex(encodeLogAck({ ackSeq: 2, head: heads[2] })) },
    batch: { firstSeq: BATCH.from, count: BATCH.to - BATCH.from + 1, hex: hex(batch) },
    ack: { ackSeq: BATCH.to, hex: hex(ack) },
    ackNone: { hex: hex(ackNone) },
  };
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** TypeScript literal with bare keys; objects of plain values stay on one line to keep the module small. */
function toTs(v: Json, indent: string): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  const inner = indent + "    ";
  if (Array.isArray(v)) return "[\n" + v.map((x) => inner + toTs(x, inner) + ",\n").join("") + indent + "]";
  const entries = Object.entries(v).map(([k, x]) => `${IDENT.test(k) ? k : JSON.stringify(k)}: ${toTs(x, inner)}`);
  const flat = Object.values(v).every((x) => typeof x !== "object");
  return flat ? "{ " + entries.join(", ") + " }" : "{\n" + entries.map((e) => inner + e + ",\n").join("") + indent + "}";
}

export function buildVectors(): { json: string; ds: string } {
  const v = buildVectorObject();
  const json = JSON.stringify(v, null, 2) + "\n";
  const ds =
    `// GENERATED by src/tools/gen-vectors.ts from the same data as ${JSON_PATH}. Do not edit.\n` +
    `// Hex strings and numbers only (DeviceScript cannot import JSON).\n` +
    `export const VECTORS = ${toTs(v, "")}\n`;
  return { json, ds };
}

function main(): void {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const { json, ds } = buildVectors();
  for (const [rel, text] of [[JSON_PATH, json], [DS_PATH, ds]] as const) {
    const path = root + rel;
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.log(`wrote ${rel} (${Buffer.byteLength(text)} bytes)`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
