// Generates the shared test vectors of docs/format.md (version 2):
//   docs/vectors/format-v2.json   read by test/format.test.ts (host)
//   devs/test/vectors.gen.ts      the same data as a DeviceScript module for the firmware tests
// Deterministic: fixed ids, keys and inputs, no clock, no randomness, so a rerun is a no-op
// and test/format.test.ts can check that both files are up to date.
// Run: npx tsx src/tools/gen-vectors.ts
import { createHash } from "node:crypto"
import { writeFileSync, mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import {
    ALARM_TYPE,
    BOOT_REASON,
    KIND,
    SFLAG_CONFIG_MISMATCH,
    SFLAG_NO_READING,
    TIME_SOURCE,
    blockKey,
    encodeAck,
    encodeBatch,
    encodeBlock,
    encodeEpochKey,
    encodeItems,
    encodeLogAck,
    encodeLogMeta,
    encodeRecord,
    encryptLoc,
    epochKey,
    genesisHead,
    nextHead,
    sealMac,
    type LogRecord,
    type SampleRecord,
} from "../format/index.js"

export const JSON_PATH = "docs/vectors/format-v2.json"
export const DS_PATH = "devs/test/vectors.gen.ts"
/** DeviceScript holds the module in RAM: keep it small. */
export const DS_MAX_BYTES = 12000

const DEVID = "c01d7ace00000001"
// 00 01 .. 1f, 20 .. 3f, 40 .. 5f: obviously test keys, never real ones.
const testKey = (from: number) => Buffer.from(Array.from({ length: 32 }, (_, i) => from + i))
const K0 = testKey(0x00)
const ACKKEY = testKey(0x20)
const LOCKEY = testKey(0x40)
const CONFIG_TEXT = '{"interval":60,"upload":3600,"low":2,"high":8}'
const CONFIG_HASH = createHash("sha256").update(CONFIG_TEXT, "utf8").digest().subarray(0, 16)

/** Plaintext positions (1e-7 degrees) of the records that carry a `loc`. */
const POSITIONS: { [seq: number]: { lat: number; lon: number } } = {
    3: { lat: -339249000, lon: 184241000 }, // Cape Town: negative latitude
    11: { lat: 387223000, lon: -91393000 }, // Lisbon: negative longitude
}

/** a record without its seq (the chain numbers them) */
type Spec = { kind: number; uptime: number; [field: string]: unknown }
const S = (uptime: number, tc: number, cj: number, sr = 0, sflags = 0): Spec => ({ kind: KIND.sample, uptime, tc, cj, sr, sflags })

// The story: epoch 0 (boot 1) records 0..11, sealed at the next boot (12) before its boot
// record (13); epoch 1 runs to the seal at 19; the compact stream 20..40 is logged in epoch 2.
// The device evicted block 3..11 unsent (the vector block) and says so in record 15, so the
// server, holding 0..2, takes the PREV batch 12..19 as a new segment, then the plain batch
// 20..40. Boot records' `prev`, seal macs and evicted fields are computed, not typed in.
const MAIN: Spec[] = [
    { kind: KIND.boot, uptime: 812, boot: 1, reason: BOOT_REASON.powerOn, prev: Buffer.alloc(8) },
    { kind: KIND.config, uptime: 815, hash: CONFIG_HASH },
    { kind: KIND.time, uptime: 4021, utc: 1767225600123, source: TIME_SOURCE.simulator },
    { kind: KIND.fix, uptime: 5000, loc: Buffer.alloc(16), fix: 3, sv: 9 },
    S(60000, 3200, 1600),
    S(120000, 3203, 1600), // a run of one in the block
    S(180000, -2624, -336), // negative tc and cj
    S(240000, 262143, 1580, 0x01), // faulted: sr
    S(300000, 0, 0, 0, SFLAG_NO_READING),
    { kind: KIND.alarm, uptime: 300001, type: ALARM_TYPE.aboveBand, tc: 1100 },
    S(360000, 1152, 1600, 0, SFLAG_CONFIG_MISMATCH),
    { kind: KIND.stop, uptime: 1800000, start: 400000, loc: Buffer.alloc(16) },
    { kind: KIND.seal, uptime: 90, epoch: 0, count: 0, mac: Buffer.alloc(16) },
    { kind: KIND.boot, uptime: 95, boot: 2, reason: BOOT_REASON.watchdog, prev: Buffer.alloc(8) },
    { kind: KIND.time, uptime: 2500, utc: 1767232800000, source: TIME_SOURCE.gnss },
    {
        kind: KIND.evicted,
        uptime: 3000,
        first: 3,
        last: 11,
        samples: 0,
        tFirst: 0,
        tLast: 0,
        minTc: 0,
        maxTc: 0,
        outMin: 0,
        srOr: 0,
        sflagsOr: 0,
    },
    S(3000000000, -262144, -8192), // the 19- and 14-bit extremes, uptime above 2^31
    { kind: KIND.alarm, uptime: 3000000001, type: ALARM_TYPE.belowBand, tc: -128 },
    { kind: 12, uptime: 3000060000, payload: Buffer.from("a5c3", "hex") }, // unknown kind: kept whole
    { kind: KIND.seal, uptime: 3000060001, epoch: 1, count: 0, mac: Buffer.alloc(16) },
]
const EVICTED_SEQ = 15
/** alarm band of the evicted summary, in tc counts (2..8 C) */
const BAND = { low: 256, high: 1024 }
const SAMPLE_MIN = 1 // minutes per sample

// The compact stream (epoch 2): runs with nibbles -8, 7 and 0, odd-length runs, and what breaks
// them: a faulted sample, a sample after it, a time record, a step change, a delta of +8.
const U0 = 3000120000
const STREAM_SPEC: [number, number, number?][] = [
    // [seconds after U0, tc, sr] for samples; a time record is marked by tc NaN
    [0, -8960], // full: no reference yet
    [60, -8968],
    [120, -8961],
    [180, -8961],
    [240, -8962],
    [300, -8962], // run of 5: -8 +7 0 -1 0
    [360, -8962, 0x04], // faulted: full
    [420, -8963], // full: its reference is the faulted sample
    [480, -8963],
    [540, -8964],
    [600, -8960], // run of 3: 0 -1 +4
    [600.5, NaN], // time record: full
    [660, -8960],
    [720, -8959], // run of 2 from the sample before the time record
    [840, -8959],
    [960, -8958], // step change to 120 s: a new run of 2
    [1080, -8950], // +8: full
    [1200, -8950],
    [1320, -8951],
    [1440, -8951],
    [1560, -8952], // run of 4 (step 120)
]
const STREAM_FIRST = MAIN.length
const STREAM: Spec[] = STREAM_SPEC.map(([s, tc, sr]) =>
    Number.isNaN(tc)
        ? { kind: KIND.time, uptime: U0 + s * 1000, utc: 1767300000000, source: TIME_SOURCE.network }
        : S(U0 + s * 1000, tc, 1400, sr ?? 0),
)

const BLOCK = { n: 42, from: 3, to: 11 }
const BATCH_PREV = { from: 12, to: 19, boot: 2, epoch: 2 }
const BATCH_PLAIN = { from: STREAM_FIRST, to: STREAM_FIRST + STREAM.length - 1, boot: 2, epoch: 2 }

type Json = number | string | Json[] | { [k: string]: Json }
const hex = (b: Buffer) => b.toString("hex")

/** Builds the chain: fills in computed fields (boot prev, loc, seals, evicted summary). */
function buildChain() {
    const genesis = genesisHead(DEVID)
    const records: LogRecord[] = []
    const bytes: Buffer[] = []
    const heads: Buffer[] = []
    const headBefore = (seq: number) => (seq === 0 ? genesis : heads[seq - 1])
    let sinceSeal = 0
    for (const [i, spec] of [...MAIN, ...STREAM].entries()) {
        const r = { seq: i, ...spec } as LogRecord
        if (r.kind === KIND.boot && "prev" in r) r.prev = i === 0 ? Buffer.alloc(8) : Buffer.from(headBefore(i).subarray(0, 8))
        if ((r.kind === KIND.fix || r.kind === KIND.stop) && "loc" in r) {
            r.loc = encryptLoc(LOCKEY, DEVID, i, POSITIONS[i].lat, POSITIONS[i].lon)
        }
        if (r.kind === KIND.seal && "mac" in r) {
            r.count = sinceSeal
            r.mac = sealMac(epochKey(K0, r.epoch), DEVID, r.epoch, i, headBefore(i), sinceSeal)
        }
        if (r.kind === KIND.evicted && "srOr" in r) Object.assign(r, summarise(records, r.first, r.last))
        sinceSeal = r.kind === KIND.seal ? 0 : sinceSeal + 1
        records.push(r)
        bytes.push(encodeRecord(r))
        heads.push(nextHead(headBefore(i), bytes[i]))
    }
    return { genesis, records, bytes, heads, headBefore }
}

/** The evicted summary of records first..last (section 5.3), UTC from the time record before them. */
function summarise(records: LogRecord[], first: number, last: number) {
    const span = records.slice(first, last + 1)
    const samples = span.filter((r): r is SampleRecord => r.kind === KIND.sample)
    const anchor = records
        .slice(0, last + 1)
        .filter(r => r.kind === KIND.time)
        .pop() as { uptime: number; utc: number }
    const utcS = (s: SampleRecord) => Math.floor((anchor.utc + s.uptime - anchor.uptime) / 1000)
    const ok = samples.filter(s => s.sr === 0 && s.sflags === 0)
    return {
        samples: samples.length,
        tFirst: samples.length ? utcS(samples[0]) : 0,
        tLast: samples.length ? utcS(samples[samples.length - 1]) : 0,
        minTc: ok.length ? Math.min(...ok.map(s => s.tc)) : 0,
        maxTc: ok.length ? Math.max(...ok.map(s => s.tc)) : 0,
        outMin: ok.filter(s => s.tc < BAND.low || s.tc > BAND.high).length * SAMPLE_MIN,
        srOr: samples.reduce((a, s) => a | s.sr, 0),
        sflagsOr: samples.reduce((a, s) => a | s.sflags, 0),
    }
}

/** A record as vector fields: the typed object with buffers as hex, utc also split as on the wire, plaintext positions. */
function recordFields(r: LogRecord): { [k: string]: Json } {
    const out: { [k: string]: Json } = {}
    for (const [k, v] of Object.entries(r)) {
        out[k] = Buffer.isBuffer(v) ? hex(v) : (v as number)
        if (k === "utc") {
            out.utcLo = (v as number) % 0x100000000
            out.utcHi = Math.floor((v as number) / 0x100000000)
        }
    }
    const pos = POSITIONS[r.seq]
    if (pos && "loc" in r) Object.assign(out, pos)
    return out
}

export function buildVectorObject(): { [k: string]: Json } {
    const { genesis, records, bytes, heads, headBefore } = buildChain()
    if (records[EVICTED_SEQ].kind !== KIND.evicted) throw new Error("EVICTED_SEQ does not name the evicted record")
    const span = (from: number, to: number) => bytes.slice(from, to + 1)
    const k = (e: number) => epochKey(K0, e)

    const block = encodeBlock({ firstSeq: BLOCK.from, prevHead: headBefore(BLOCK.from), records: span(BLOCK.from, BLOCK.to) })
    const batch = (b: typeof BATCH_PLAIN, prev: boolean) => ({
        boot: b.boot,
        epoch: b.epoch,
        firstSeq: b.from,
        count: b.to - b.from + 1,
        prev: prev ? 1 : 0,
        prevHead: hex(headBefore(b.from)),
        hex: hex(
            encodeBatch({
                devid: DEVID,
                boot: b.boot,
                epoch: b.epoch,
                firstSeq: b.from,
                prevHead: prev ? headBefore(b.from) : null,
                records: span(b.from, b.to),
                key: k(b.epoch),
            }),
        ),
    })
    const last = BATCH_PLAIN.to
    const ack = { ackSeq: last, head: heads[last], boot: BATCH_PLAIN.boot, epoch: BATCH_PLAIN.epoch }
    const ackNone = { ackSeq: null, boot: 1, epoch: 0 }
    const meta = { firstBlock: 40, lastBlock: BLOCK.n, boot: 2 }
    const lgack = { ackSeq: 2, head: heads[2], boot: 1 }

    return {
        version: 2,
        devid: DEVID,
        k0: hex(K0),
        ackkey: hex(ACKKEY),
        lockey: hex(LOCKEY),
        genesis: hex(genesis),
        /** k[0] = k0, k[1], k[2], k[3] */
        keys: [0, 1, 2, 3].map(e => hex(k(e))),
        configText: hex(Buffer.from(CONFIG_TEXT, "utf8")),
        band: { low: BAND.low, high: BAND.high },
        records: records.slice(0, STREAM_FIRST).map((r, i) => ({ ...recordFields(r), hex: hex(bytes[i]), head: hex(heads[i]) })),
        stream: {
            firstSeq: STREAM_FIRST,
            count: STREAM.length,
            items: hex(encodeItems(span(STREAM_FIRST, last))),
            records: span(STREAM_FIRST, last).map(hex),
            prevHead: hex(headBefore(STREAM_FIRST)),
            head: hex(heads[last]),
        },
        block: {
            n: BLOCK.n,
            key: blockKey(BLOCK.n),
            firstSeq: BLOCK.from,
            lastSeq: BLOCK.to,
            head: hex(heads[BLOCK.to]),
            hex: hex(block),
        },
        batchPrev: batch(BATCH_PREV, true),
        batchPlain: batch(BATCH_PLAIN, false),
        ack: {
            ackSeq: ack.ackSeq,
            head: hex(ack.head),
            boot: ack.boot,
            epoch: ack.epoch,
            hex: hex(encodeAck({ devid: DEVID, ackkey: ACKKEY, ...ack })),
        },
        ackNone: { boot: ackNone.boot, epoch: ackNone.epoch, hex: hex(encodeAck({ devid: DEVID, ackkey: ACKKEY, ...ackNone })) },
        lgmeta: { ...meta, hex: hex(encodeLogMeta(meta)) },
        lgack: { ackSeq: lgack.ackSeq, boot: lgack.boot, hex: hex(encodeLogAck(lgack)) },
        ekey: { epoch: 2, sealSeq: BATCH_PREV.to, hex: hex(encodeEpochKey({ epoch: 2, key: k(2), sealSeq: BATCH_PREV.to })) },
    }
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/** TypeScript literal with bare keys; objects of plain values stay on one line to keep the module small. */
function toTs(v: Json, indent: string): string {
    if (typeof v === "number") return String(v)
    if (typeof v === "string") return JSON.stringify(v)
    const inner = indent + "    "
    if (Array.isArray(v)) return "[\n" + v.map(x => inner + toTs(x, inner) + ",\n").join("") + indent + "]"
    const entries = Object.entries(v).map(([k, x]) => `${IDENT.test(k) ? k : JSON.stringify(k)}: ${toTs(x, inner)}`)
    const flat = Object.values(v).every(x => typeof x !== "object")
    return flat ? "{ " + entries.join(", ") + " }" : "{\n" + entries.map(e => inner + e + ",\n").join("") + indent + "}"
}

export function buildVectors(): { json: string; ds: string } {
    const v = buildVectorObject()
    const json = JSON.stringify(v, null, 2) + "\n"
    const ds =
        `// GENERATED by src/tools/gen-vectors.ts from the same data as ${JSON_PATH}. Do not edit.\n` +
        `// Hex strings and numbers only (DeviceScript cannot import JSON).\n` +
        `export const VECTORS = ${toTs(v, "")}\n`
    return { json, ds }
}

function main(): void {
    const root = fileURLToPath(new URL("../../", import.meta.url))
    const { json, ds } = buildVectors()
    if (Buffer.byteLength(ds) >= DS_MAX_BYTES) throw new Error(`${DS_PATH} would be ${Buffer.byteLength(ds)} bytes, over ${DS_MAX_BYTES}`)
    for (const [rel, text] of [
        [JSON_PATH, json],
        [DS_PATH, ds],
    ] as const) {
        const path = root + rel
        mkdirSync(dirname(path), { recursive: true })
        writeFileSync(path, text)
        console.log(`wrote ${rel} (${Buffer.byteLength(text)} bytes)`)
    }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main()
