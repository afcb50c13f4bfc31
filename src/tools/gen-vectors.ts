// Generates the shared test vectors of docs/format.md (version 4):
//   docs/vectors/format-v4.json   read by test/format.test.ts (host)
//   devs/test/vectors.gen.ts      the same data as a DeviceScript module for the firmware tests
//                                 (written only with --devs: the firmware tree regenerates it)
// Deterministic: fixed ids, keys and inputs, no clock, no randomness, so a rerun is a no-op
// and test/format.test.ts can check that both files are up to date.
// Run: npx tsx src/tools/gen-vectors.ts [--devs]
import { createHash } from "node:crypto"
import { writeFileSync, mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import {
    ALARM_TYPE,
    BATTERY_FLAG,
    BATTERY_LEVEL,
    RULE_WHY,
    BOOT_REASON,
    BOOT_RTC,
    KIND,
    SFLAG_CONFIG_MISMATCH,
    SFLAG_NO_READING,
    TIME_FLAG,
    TIME_SOURCE,
    blockKey,
    completeOpenBlock,
    decodeTail,
    encodeAck,
    encodeBatch,
    encodeBlock,
    encodeEpochKey,
    encodeLogAck,
    encodeLogMeta,
    encodePack,
    encodeRecord,
    encryptLoc,
    epochKey,
    genesisHead,
    initialPackState,
    nextHead,
    sealMac,
    type LogRecord,
    type SampleRecord,
} from "../format/index.js"
import { flashImage } from "../sim/flash-image.js"
import { buildTimeline } from "../verify/timeline.js"

export const JSON_PATH = "docs/vectors/format-v4.json"
export const DS_PATH = "devs/test/vectors.gen.ts"
/** DeviceScript holds the module in RAM: keep it small. */
export const DS_MAX_BYTES = 18000
export const VERSION = 4

const DEVID = "c01d7ace00000001"
// 00 01 .. 1f, 20 .. 3f, 40 .. 5f: obviously test keys, never real ones.
const testKey = (from: number) => Buffer.from(Array.from({ length: 32 }, (_, i) => from + i))
const K0 = testKey(0x00)
const ACKKEY = testKey(0x20)
const LOCKEY = testKey(0x40)
const CONFIG_TEXT = '{"interval":60,"upload":3600,"low":2,"high":8}'
const CONFIG_HASH = createHash("sha256").update(CONFIG_TEXT, "utf8").digest().subarray(0, 16)
/** the firmware identity boot records carry (8 bytes) */
const FW = Buffer.from("c7fw0003", "ascii")
/** the random part of a loc is random on a device; fixed here: a0 a1 .. a6 and the seq's low byte */
const locRandom = (seq: number) => Buffer.from([0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, seq & 0xff])

/** Plaintext positions (1e-7 degrees) of the records that carry a `loc`. */
const POSITIONS: { [seq: number]: { lat: number; lon: number } } = {
    3: { lat: -339249000, lon: 184241000 }, // Cape Town: negative latitude
    11: { lat: 387223000, lon: -91393000 }, // Lisbon: negative longitude
}

/** a record without its seq (the chain numbers them) */
type Spec = { kind: number; t: number; [field: string]: unknown }
const S = (t: number, tc: number, cj: number, sr = 0, sflags = 0): Spec => ({ kind: KIND.sample, t, tc, cj, sr, sflags })

// The story. Boot 1: the real-time clock lost its power (it counts from 0); the GNSS time record 2
// sets it (SET), so from record 3 on it reads UTC seconds (T1 = 1767225604). Epoch 0 runs to 11 and
// is sealed at the next boot (12) before its boot record (13): a watchdog reset, the clock kept
// running on its backup supply (the same mapping places 13 before the network time 14). Epoch 1 runs
// to the seal at 20; boot 3 (21) is a brown-out that lost the clock again: t restarts near 0, and
// records 21..22 are placed only by the time record 23 of that run. The packed stream 24.. is
// logged in epoch 2. The device evicted the block 3..11 unsent and says so in record 15, so the
// server, holding 0..2, takes the PREV batch 12..20 as a new segment, then the plain batch 21..
// Boot records' `prev`, seal macs, locs and evicted fields are computed, not typed in.
const T1 = 1767225604
const MAIN: Spec[] = [
    {
        kind: KIND.boot,
        t: 0,
        boot: 1,
        reason: BOOT_REASON.powerOn,
        rtc: BOOT_RTC.lost | BOOT_RTC.unset,
        prev: Buffer.alloc(8),
        fw: FW,
    },
    { kind: KIND.config, t: 0, hash: CONFIG_HASH },
    { kind: KIND.time, t: 4, utc: T1 * 1000 + 123, source: TIME_SOURCE.gnss, flags: TIME_FLAG.set },
    { kind: KIND.fix, t: T1 + 1, loc: Buffer.alloc(24), fix: 3, sv: 9 },
    S(T1 + 60, 3200, 1600),
    S(T1 + 120, 3203, 1600),
    S(T1 + 180, -2624, -336), // negative tc and cj
    S(T1 + 240, 262143, 1580, 0x01), // faulted: sr
    S(T1 + 300, 0, 0, 0, SFLAG_NO_READING),
    { kind: KIND.alarm, t: T1 + 300, type: ALARM_TYPE.aboveBand, tc: 1100 },
    S(T1 + 360, 1152, 1600, 0, SFLAG_CONFIG_MISMATCH),
    { kind: KIND.stop, t: T1 + 1800, start: T1 + 400, loc: Buffer.alloc(24) },
    { kind: KIND.seal, t: T1 + 7190, epoch: 0, count: 0, mac: Buffer.alloc(16) },
    { kind: KIND.boot, t: T1 + 7190, boot: 2, reason: BOOT_REASON.watchdog, rtc: BOOT_RTC.backup, prev: Buffer.alloc(8), fw: FW },
    { kind: KIND.time, t: T1 + 7196, utc: (T1 + 7196) * 1000 + 456, source: TIME_SOURCE.network, flags: 0 },
    {
        kind: KIND.evicted,
        t: T1 + 7200,
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
    { kind: KIND.battery, t: T1 + 7200, mv: 3712, level: BATTERY_LEVEL.normal, flags: BATTERY_FLAG.external },
    // an alarm rule's event: rule 2 of the compiled set (a single-event rule, type 1) raised at 46 °C
    { kind: KIND.ruleAlarm, t: T1 + 7200, rule: 2, raise: true, why: RULE_WHY.none, type: 1, value: 5888 },
    S(T1 + 7260, -262144, -8192), // the 19- and 14-bit extremes
    { kind: KIND.alarm, t: T1 + 7261, type: ALARM_TYPE.belowBand, tc: -128 },
    { kind: 13, t: T1 + 7320, payload: Buffer.from("a5c3", "hex") }, // unknown kind: kept whole
    { kind: KIND.seal, t: T1 + 7321, epoch: 1, count: 0, mac: Buffer.alloc(16) },
    { kind: KIND.boot, t: 2, boot: 3, reason: BOOT_REASON.brownOut, rtc: BOOT_RTC.lost | BOOT_RTC.unset, prev: Buffer.alloc(8), fw: FW },
    { kind: KIND.config, t: 2, hash: CONFIG_HASH },
    { kind: KIND.time, t: 9, utc: 1767300000000, source: TIME_SOURCE.gnss, flags: TIME_FLAG.set },
    // the lid: the clock counted 2 openings since the last lid record, the first at t = 1767300004, it is open now
    { kind: KIND.lid, t: 1767300060, first: 1767300004, openEdge: true, count: 2, open: true, flags: 0 },
]
const EVICTED_SEQ = 15
/** alarm band of the evicted summary, in tc counts (2..8 C) */
const BAND = { low: 256, high: 1024 }
const SAMPLE_MIN = 1 // minutes per sample

// The packed stream (epoch 2, t = UTC seconds again): a stable reading with noise, a step, a
// faulted sample and the one after it, a time record between samples, a slower interval, a jump.
const U0 = 1767300000
const STREAM_SPEC: [number, number, number?][] = [
    // [seconds after U0, tc, sr] for samples; a time record is marked by tc NaN
    [60, -8960],
    [120, -8968],
    [180, -8961],
    [240, -8961],
    [300, -8962],
    [360, -8962, 0x04], // faulted
    [420, -8963],
    [480, -8963],
    [540, -8964],
    [600, -8960],
    [600, NaN], // time record
    [660, -8960],
    [720, -8959],
    [840, -8959], // interval 120 s
    [960, -8958],
    [1080, -8950],
    [1200, -4000], // a jump
    [1320, -3990],
    [1440, -3991],
    [1560, -3992],
]
const STREAM_FIRST = MAIN.length
const STREAM: Spec[] = STREAM_SPEC.map(([s, tc, sr]) =>
    Number.isNaN(tc)
        ? { kind: KIND.time, t: U0 + s, utc: (U0 + s) * 1000 + 20, source: TIME_SOURCE.network, flags: 0 }
        : S(U0 + s, tc, 1400, sr ?? 0),
)

const BLOCK = { n: 42, from: 3, to: 11 }
const BATCH_PREV = { from: 12, to: 20, boot: 2, epoch: 2, nonce: 0x5eed0001 }
const BATCH_PLAIN = { from: 21, to: STREAM_FIRST + STREAM.length - 1, boot: 3, epoch: 2, nonce: 0x5eed0002, perPart: 10 }
/** number of the first block of the flash vector: the last slot of the ring, so it wraps */
const FLASH_FIRST_BLOCK = 63
/** the server's UTC in the acks */
const ACK_UTC = 1767302000789

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
        const r = { seq: i, ...spec } as unknown as LogRecord
        if (r.kind === KIND.boot && "prev" in r) r.prev = i === 0 ? Buffer.alloc(8) : Buffer.from(headBefore(i).subarray(0, 8))
        if ((r.kind === KIND.fix || r.kind === KIND.stop) && "loc" in r) {
            r.loc = encryptLoc(LOCKEY, i, POSITIONS[i].lat, POSITIONS[i].lon, locRandom(i))
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

/** The evicted summary of records first..last (docs/format.md 2.3): device times of the samples. */
function summarise(records: LogRecord[], first: number, last: number) {
    const span = records.slice(first, last + 1)
    const samples = span.filter((r): r is SampleRecord => r.kind === KIND.sample)
    const ok = samples.filter(s => s.sr === 0 && s.sflags === 0)
    return {
        samples: samples.length,
        tFirst: samples.length ? samples[0].t : 0,
        tLast: samples.length ? samples[samples.length - 1].t : 0,
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
        // (a flag as 0/1: the DeviceScript twin holds hex strings and numbers only)
        out[k] = Buffer.isBuffer(v) ? hex(v) : typeof v === "boolean" ? (v ? 1 : 0) : (v as number)
        if (k === "utc") {
            out.utcLo = (v as number) % 0x100000000
            out.utcHi = Math.floor((v as number) / 0x100000000)
        }
    }
    const pos = POSITIONS[r.seq]
    if (pos && "loc" in r) Object.assign(out, pos, { r: hex(locRandom(r.seq)) })
    return out
}

/** canonical records built by hand for the pack cases (not part of the chain) */
function rec(seq: number, kind: number, t: number, fields: Record<string, unknown>): Buffer {
    return encodeRecord({ seq, kind, t, ...fields } as unknown as LogRecord)
}
const sampleAt = (seq: number, t: number, tc: number, cj = 1400, sr = 0, sflags = 0) =>
    rec(seq, KIND.sample, t >>> 0, { tc, cj, sr, sflags })

/** Small packed streams that reach the coder's corners; `records` are canonical hex. */
function packCases(): { name: string; firstSeq: number; records: Buffer[] }[] {
    const wrap: Buffer[] = []
    for (let i = 0; i < 8; i++) wrap.push(sampleAt(100 + i, 0xffffffff - 700 + 300 * i, 2000 + ((i * 5) % 3)))
    const seals = [0, 1, 2, 3].map(i =>
        rec(500 + i, KIND.seal, 9000 + i, { epoch: 7 + i, count: i === 0 ? 4 : 0, mac: Buffer.alloc(16, 0x10 + i) }),
    )
    const hi = 2 ** 31 - 1
    const lo = -(2 ** 31)
    const extremes = [hi, lo, hi, 0, lo].map((tc, i) => sampleAt(7 + i, 60 * i, tc, i % 2 ? 32767 : -32768))
    return [
        { name: "single sample", firstSeq: 0, records: [sampleAt(0, 1767225600, 3200, 1600)] },
        { name: "t wraps round u32", firstSeq: 100, records: wrap },
        { name: "only seals: next epoch and implied count after the first", firstSeq: 500, records: seals },
        { name: "extreme tc and cj", firstSeq: 7, records: extremes },
        {
            name: "faulted first, unknown kind, battery",
            firstSeq: 30,
            records: [
                sampleAt(30, 600, 262143, 1580, 0x01),
                sampleAt(31, 660, 3200, 1600),
                rec(32, 200, 661, { payload: Buffer.from("0102", "hex") }),
                rec(33, KIND.battery, 662, { mv: 3600, level: BATTERY_LEVEL.low, flags: 0 }),
                sampleAt(34, 720, 3201, 1600),
            ],
        },
    ]
}

export function buildVectorObject(): { [k: string]: Json } {
    const { genesis, records, bytes, heads, headBefore } = buildChain()
    if (records[EVICTED_SEQ].kind !== KIND.evicted) throw new Error("EVICTED_SEQ does not name the evicted record")
    const span = (from: number, to: number) => bytes.slice(from, to + 1)
    const k = (e: number) => epochKey(K0, e)
    const last = BATCH_PLAIN.to

    const block = encodeBlock(span(BLOCK.from, BLOCK.to))
    const batch = (b: typeof BATCH_PREV & { perPart?: number }, prev: boolean) => ({
        boot: b.boot,
        epoch: b.epoch,
        nonce: b.nonce,
        firstSeq: b.from,
        count: b.to - b.from + 1,
        prev: prev ? 1 : 0,
        prevHead: hex(headBefore(b.from)),
        perPart: b.perPart ?? b.to - b.from + 1,
        hex: hex(
            encodeBatch({
                devid: DEVID,
                boot: b.boot,
                epoch: b.epoch,
                nonce: b.nonce,
                firstSeq: b.from,
                prevHead: prev ? headBefore(b.from) : null,
                records: span(b.from, b.to),
                key: k(b.epoch),
                perPart: b.perPart,
            }),
        ),
    })
    const ack = {
        ackSeq: last,
        head: heads[last],
        boot: BATCH_PLAIN.boot,
        epoch: BATCH_PLAIN.epoch,
        nonce: BATCH_PLAIN.nonce,
        utc: ACK_UTC,
    }
    const ackNone = { ackSeq: null, boot: 1, epoch: 0, nonce: 0x5eed0003, utc: ACK_UTC }
    const lgack = { ackSeq: 2, head: heads[2], boot: 1 }
    const ep = { epoch: 2, key: k(2), sealSeq: BATCH_PREV.to, start: U0 }

    // the flash of the device after record `last`: blocks from seq 12 (the seal before boot 2) round
    // the end of the ring (63 = b3f, then b00), the open block with 7 bytes in its tail
    const flashFrom = 12
    const img = flashImage({
        records: span(flashFrom, last),
        baseHead: headBefore(flashFrom),
        firstBlock: FLASH_FIRST_BLOCK,
        ack: { ackSeq: 25, head: heads[25], boot: 3 },
        boot: 3,
        tailBytes: 7,
    })
    const metaHex = img.settings.get("lgmeta")!
    const openKey = blockKey(FLASH_FIRST_BLOCK + img.blockFirstSeqs.length - 1)
    const tail = decodeTail(img.settings.get("tl")!)

    const timeline = buildTimeline(records)

    return {
        version: VERSION,
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
        /** UTC ms of each record by the timeline (docs/timebase.md), -1: unplaced */
        placed: timeline.placed.map(p => p.utc ?? -1),
        stream: {
            firstSeq: STREAM_FIRST,
            count: STREAM.length,
            records: span(STREAM_FIRST, last).map(hex),
            packed: hex(encodePack(span(STREAM_FIRST, last))),
            prevHead: hex(headBefore(STREAM_FIRST)),
            head: hex(heads[last]),
        },
        /** the main records 0.. packed as one stream (every kind the coder models and some it does not) */
        packedMain: { firstSeq: 0, count: STREAM_FIRST, packed: hex(encodePack(span(0, STREAM_FIRST - 1))) },
        pack: packCases().map(c => ({
            name: c.name,
            firstSeq: c.firstSeq,
            records: c.records.map(hex),
            packed: hex(encodePack(c.records)),
        })),
        block: {
            n: BLOCK.n,
            key: blockKey(BLOCK.n),
            firstSeq: BLOCK.from,
            lastSeq: BLOCK.to,
            head: hex(heads[BLOCK.to]),
            hex: hex(block),
        },
        flash: {
            firstSeq: flashFrom,
            lastSeq: last,
            baseHead: hex(headBefore(flashFrom)),
            head: hex(heads[last]),
            blockFirstSeqs: img.blockFirstSeqs,
            openKey,
            /** the open block finished with the tail (what a boot reads) */
            openComplete: hex(completeOpenBlock(img.settings.get(openKey)!, tail)),
            settings: Object.fromEntries([...img.settings].map(([key, v]) => [key, hex(v)])),
        },
        initialPackState: hex(initialPackState()),
        batchPrev: batch(BATCH_PREV, true),
        batchPlain: batch(BATCH_PLAIN, false),
        ack: {
            ackSeq: ack.ackSeq,
            head: hex(ack.head),
            boot: ack.boot,
            epoch: ack.epoch,
            nonce: ack.nonce,
            utc: ack.utc,
            hex: hex(encodeAck({ devid: DEVID, ackkey: ACKKEY, ...ack })),
        },
        ackNone: {
            boot: ackNone.boot,
            epoch: ackNone.epoch,
            nonce: ackNone.nonce,
            utc: ackNone.utc,
            hex: hex(encodeAck({ devid: DEVID, ackkey: ACKKEY, ...ackNone })),
        },
        lgmeta: {
            firstBlock: FLASH_FIRST_BLOCK,
            lastBlock: FLASH_FIRST_BLOCK + img.blockFirstSeqs.length - 1,
            baseHead: hex(headBefore(flashFrom)),
            hex: hex(metaHex),
        },
        lgack: { ackSeq: lgack.ackSeq, boot: lgack.boot, hex: hex(encodeLogAck(lgack)) },
        ep: { epoch: ep.epoch, sealSeq: ep.sealSeq, start: ep.start, hex: hex(encodeEpochKey(ep)) },
        loc: Object.entries(POSITIONS).map(([seq, p]) => ({
            seq: Number(seq),
            lat: p.lat,
            lon: p.lon,
            r: hex(locRandom(Number(seq))),
            hex: hex(encryptLoc(LOCKEY, Number(seq), p.lat, p.lon, locRandom(Number(seq)))),
        })),
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

/** Fields of the JSON the firmware tests do not read: left out of the DeviceScript twin to save RAM. */
export const HOST_ONLY = ["placed"]

export function buildVectors(): { json: string; ds: string } {
    const v = buildVectorObject()
    const forDs = Object.fromEntries(Object.entries(v).filter(([k]) => !HOST_ONLY.includes(k)))
    const json = JSON.stringify(v, null, 2) + "\n"
    const ds =
        `// GENERATED by src/tools/gen-vectors.ts from the same data as ${JSON_PATH}. Do not edit.\n` +
        `// Hex strings and numbers only (DeviceScript cannot import JSON).\n` +
        `export const VECTORS = ${toTs(forDs, "")}\n`
    return { json, ds }
}

function main(): void {
    const root = fileURLToPath(new URL("../../", import.meta.url))
    const { json, ds } = buildVectors()
    if (Buffer.byteLength(ds) >= DS_MAX_BYTES) throw new Error(`${DS_PATH} would be ${Buffer.byteLength(ds)} bytes, over ${DS_MAX_BYTES}`)
    const files: [string, string][] = [[JSON_PATH, json]]
    if (process.argv.includes("--devs")) files.push([DS_PATH, ds])
    for (const [rel, text] of files) {
        const path = root + rel
        mkdirSync(dirname(path), { recursive: true })
        writeFileSync(path, text)
        console.log(`wrote ${rel} (${Buffer.byteLength(text)} bytes)`)
    }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main()
