// Issue 11 figures from the host's twin of the format (no VM): the bench's three temperature
// profiles (the same generators as devs/bench/logbench.ts) logged as the v3 firmware logs them,
// packed into 224-byte flash blocks by the real host pack coder (src/format/pack.ts), with every
// overhead counted (settings-store entries, block headers, time records, seals, battery records,
// the bookkeeping values); next to the empirical entropy of the same samples, so the distance to
// the physical limit shows. Lossless: every block is decoded back and compared.
import {
    BLOCK_HEADER_LEN,
    BLOCK_MAX_LEN,
    BOOT_REASON,
    BOOT_RTC,
    EPOCH_LEN,
    KIND,
    LOG_ACK_LEN,
    LOG_META_LEN,
    PACK_STATE_LEN,
    PackEncoder,
    SFLAG_NO_READING,
    TAIL_HEADER_LEN,
    TAIL_MAX_BYTES,
    TIME_FLAG,
    decodeBlock,
    encodeRecord,
    type LogRecord,
} from "../src/format/index.js"

export const PACK_PROFILES = ["stable", "fridge", "excursion"] as const
export type PackProfile = (typeof PACK_PROFILES)[number]

const SAMPLE_S = 300
const PER_DAY = 86400 / SAMPLE_S
/** the ESP32 settings store: 16 KB header, 24-byte store header, two spare 24-byte entries */
const STORE = 16384 - 24 - 48
/** settings-store cost of one value: a 24-byte entry plus the value rounded up to 8 bytes */
export const cost = (len: number) => 24 + (len <= 0 ? 8 : Math.ceil(len / 8) * 8)
/** what the store holds besides the blocks: provisioning (devid, ackkey, lockey, endpoint, cfg), ep, lgmeta, lgack, st, a full tl */
const FIXED =
    cost(8) +
    cost(32) +
    cost(32) +
    cost(48) +
    cost(64) +
    cost(EPOCH_LEN) +
    cost(LOG_META_LEN) +
    cost(LOG_ACK_LEN) +
    cost(128) +
    cost(TAIL_HEADER_LEN + PACK_STATE_LEN + TAIL_MAX_BYTES)
/** compaction needs room for one more block */
const HEADROOM = cost(BLOCK_MAX_LEN)

/** xorshift32, as devs/bench/logbench.ts */
class Rng {
    s: number
    constructor(seed: number) {
        this.s = seed | 0
    }
    u32(): number {
        let x = this.s
        x ^= x << 13
        x ^= x >>> 17
        x ^= x << 5
        this.s = x | 0
        return x >>> 0
    }
    int(lo: number, hi: number): number {
        return lo + Math.floor((this.u32() / 4294967296) * (hi - lo + 1))
    }
}

/** A reading per 300 s slot (ported from devs/bench/logbench.ts `Profile`; Math.sin for its series). */
class Profile {
    tc = 0
    cj = 0
    sr = 0
    fl = 0
    rng: Rng
    doorAt: number
    doorDur: number
    doorPeak: number
    exAt: number
    exKind = 0
    exPeak = 0
    faultAt: number
    faultLeft = 0
    faultKind = 0
    constructor(
        readonly name: PackProfile,
        seed: number,
    ) {
        this.rng = new Rng(seed)
        this.doorAt = 7200 + this.rng.int(0, 3600)
        this.doorDur = 600 + this.rng.int(0, 600)
        this.doorPeak = 256 + this.rng.int(0, 128)
        this.exAt = 86400 + this.rng.int(0, 86400)
        this.faultAt = 43200 + this.rng.int(0, 86400)
    }
    private door(t: number, every: number, jitter: number, durMin: number, durSpan: number, peakMin: number, peakSpan: number): number {
        if (t > this.doorAt + this.doorDur + 3600) {
            this.doorAt += every - jitter + this.rng.int(0, 2 * jitter)
            this.doorDur = durMin + this.rng.int(0, durSpan)
            this.doorPeak = peakMin + this.rng.int(0, peakSpan)
        }
        if (t < this.doorAt) return 0
        if (t <= this.doorAt + this.doorDur) return (this.doorPeak * (t - this.doorAt)) / this.doorDur
        return this.doorPeak * Math.exp(-(t - this.doorAt - this.doorDur) / 480)
    }
    private excursion(t: number): number {
        const up = this.exKind ? 3600 : 7200
        const end = this.exAt + up + 7200
        if (t > end) {
            this.exAt += 3 * 86400 + this.rng.int(0, 86400)
            this.exKind = this.exKind ? 0 : 1
            this.exPeak = this.exKind ? -(640 + this.rng.int(0, 128)) : 640 + this.rng.int(0, 512)
        }
        if (t < this.exAt) return 0
        const dt = t - this.exAt
        if (dt <= up) return (this.exPeak * dt) / up
        if (dt <= up + 3600) return this.exPeak
        if (dt <= up + 7200) return (this.exPeak * (up + 7200 - dt)) / 3600
        return 0
    }
    read(k: number) {
        const t = k * SAMPLE_S
        const r = this.rng
        this.sr = 0
        this.fl = 0
        if (this.name === "stable") {
            this.tc = -10048 + r.int(-2, 2)
            this.cj = 1280
        } else if (this.name === "fridge") {
            const warm = this.door(t, 14400, 1800, 600, 600, 256, 128)
            this.tc = Math.round(640 + warm) + r.int(-4, 4)
            this.cj = 1408
        } else {
            const swing = 128 * Math.sin((2 * Math.PI * t) / 3000)
            const warm = this.door(t, 7200, 1800, 600, 1200, 384, 256)
            this.tc = Math.round(640 + swing + warm + this.excursion(t)) + r.int(-6, 6)
            this.cj = Math.round(1600 + 192 * Math.sin((2 * Math.PI * t) / 86400))
            if (t >= this.faultAt) {
                if (!this.faultLeft) {
                    this.faultLeft = r.int(1, 3)
                    this.faultKind = this.faultKind ? 0 : 1
                }
                if (this.faultKind) {
                    this.tc = 0
                    this.cj = 0
                    this.fl = SFLAG_NO_READING
                } else this.sr = 0x01
                this.faultLeft--
                if (!this.faultLeft) this.faultAt += 129600 + r.int(0, 86400)
            }
        }
    }
}

/** the logger's band alarm hysteresis, 0.5 C in counts */
const HYSTERESIS = 64
const SEEDS: Record<PackProfile, number> = { stable: 0x1234567, fridge: 0x2345678, excursion: 0x3456789 }
const BANDS: Record<PackProfile, { low: number; high: number }> = {
    stable: { low: -80 * 128, high: -60 * 128 },
    fridge: { low: 2 * 128, high: 8 * 128 },
    excursion: { low: 2 * 128, high: 8 * 128 },
}

/** The records a v3 logger writes over `days`: boot, config, a SET time record, samples, a time record, seal and battery record every 12 h, alarms at band crossings. */
export function profileLog(
    name: PackProfile,
    days: number,
): { records: Buffer[]; samples: { tc: number; cj: number; faulted: boolean }[] } {
    const p = new Profile(name, SEEDS[name])
    const band = BANDS[name]
    const t0 = 1767225600
    const recs: Buffer[] = []
    const samples: { tc: number; cj: number; faulted: boolean }[] = []
    const push = (r: { kind: number; t: number; [field: string]: unknown }) =>
        recs.push(encodeRecord({ ...r, seq: recs.length } as unknown as LogRecord))
    let sealSeq = -1
    let epoch = 0
    push({
        kind: KIND.boot,
        t: 3,
        boot: 1,
        reason: BOOT_REASON.powerOn,
        rtc: BOOT_RTC.lost | BOOT_RTC.unset,
        prev: Buffer.alloc(8),
        fw: Buffer.alloc(8),
    })
    push({ kind: KIND.config, t: 3, hash: Buffer.alloc(16, 7) })
    push({ kind: KIND.time, t: 9, utc: t0 * 1000 + 250, source: 1, flags: TIME_FLAG.set })
    let out = false
    const n = Math.round(days * PER_DAY)
    for (let k = 1; k <= n; k++) {
        const t = t0 + k * SAMPLE_S
        p.read(k)
        const faulted = p.sr !== 0 || p.fl !== 0
        push({ kind: KIND.sample, t, tc: p.tc, cj: p.cj, sr: p.sr, sflags: p.fl })
        samples.push({ tc: p.tc, cj: p.cj, faulted })
        if (!faulted) {
            const nowOut = p.tc < band.low || p.tc > band.high
            // as the logger (devs/app/logger.ts checkAlarm): back in band only 0.5 C (64 counts) inside it
            const edge = !nowOut && (p.tc > band.high - HYSTERESIS || p.tc < band.low + HYSTERESIS)
            if (nowOut !== out && !edge) {
                push({ kind: KIND.alarm, t, type: nowOut ? (p.tc > band.high ? 1 : 2) : 3, tc: p.tc })
                out = nowOut
            }
        }
        if (k % (PER_DAY / 2) === 0) {
            push({ kind: KIND.time, t: t + 1, utc: (t + 1) * 1000 + 40, source: 1, flags: 0 })
            push({ kind: KIND.battery, t: t + 1, mv: 3900 - Math.floor(k / PER_DAY), level: 0, flags: 0 })
            const seq = recs.length
            push({ kind: KIND.seal, t: t + 2, epoch, count: seq - sealSeq - 1, mac: Buffer.alloc(16, epoch & 0xff) })
            sealSeq = seq
            epoch++
        }
    }
    return { records: recs, samples }
}

/** Closed blocks as the firmware fills them: as many records as fit 224 bytes finished. */
export function packBlocks(records: Buffer[]): { value: Buffer; count: number }[] {
    const blocks: { value: Buffer; count: number }[] = []
    let from = 0
    let enc = new PackEncoder(records[0].readUInt32LE(0))
    let last: Buffer = Buffer.alloc(0)
    const close = (to: number) => {
        const fs = Buffer.alloc(BLOCK_HEADER_LEN)
        fs.writeUInt32LE(records[from].readUInt32LE(0), 0)
        blocks.push({ value: Buffer.concat([fs, last]), count: to - from })
    }
    for (let i = 0; i < records.length; i++) {
        enc.add(records[i])
        const fin = enc.finish()
        if (BLOCK_HEADER_LEN + fin.length > BLOCK_MAX_LEN) {
            close(i)
            from = i
            enc = new PackEncoder(records[i].readUInt32LE(0))
            enc.add(records[i])
            last = enc.finish()
        } else last = fin
    }
    close(records.length)
    return blocks
}

/** order-0 entropy in bits per symbol */
export function entropy(xs: number[]): number {
    const counts = new Map<number, number>()
    for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1)
    let h = 0
    for (const c of counts.values()) h -= (c / xs.length) * Math.log2(c / xs.length)
    return h
}

export interface PackFigures {
    name: PackProfile
    days: number
    samples: number
    records: number
    blocks: number
    /** settings-store bytes per sample, every overhead counted */
    bytesPerSample: number
    /** bits per sample: order-0 entropy of the tc deltas, of a linear predictor's and a 16-sample mean's residuals, of cj deltas, of the fault flag */
    hDelta: number
    hLinear: number
    hMean: number
    hCj: number
    hFault: number
    /** the better tc predictor + cj + fault flag, in bytes per sample */
    boundBytes: number
    /** days of 5-min samples the 16 KB store holds in full detail */
    daysHeld: number
    /**
     * the same with a coder that spends exactly the bound on each sample, 10 bits on every other
     * record but a seal, and a seal's 128-bit MAC (incompressible), in full 224-byte blocks
     */
    idealBytesPerSample: number
    idealDaysHeld: number
}

/** The figures of one profile over `days` (60 by default: enough blocks for stable averages). */
export function packFigures(name: PackProfile, days = 60): PackFigures {
    const { records, samples } = profileLog(name, days)
    const blocks = packBlocks(records)
    // lossless: every block decodes back to its records
    let at = 0
    for (const b of blocks) {
        const back = decodeBlock(b.value, b.count)
        for (let i = 0; i < b.count; i++) if (!back[i].equals(records[at + i])) throw new Error(`${name}: block record ${at + i} differs`)
        at += b.count
    }
    const storeBytes = blocks.reduce((s, b) => s + cost(b.value.length), 0)
    const ok = samples.filter(s => !s.faulted)
    const diff = (xs: number[], f: (i: number) => number) => xs.slice(2).map((_, j) => f(j + 2))
    const tcs = ok.map(s => s.tc)
    const hDelta = entropy(diff(tcs, i => tcs[i] - tcs[i - 1]))
    const hLinear = entropy(diff(tcs, i => tcs[i] - (2 * tcs[i - 1] - tcs[i - 2])))
    // a running mean of the last 16 readings (what a stable reading's noise is measured against)
    const mean: number[] = []
    let sum = 0
    for (let i = 0; i < tcs.length; i++) {
        mean.push(i ? Math.round(sum / Math.min(i, 16)) : 0)
        sum += tcs[i] - (i >= 16 ? tcs[i - 16] : 0)
    }
    const hMean = entropy(diff(tcs, i => tcs[i] - mean[i]))
    const cjs = ok.map(s => s.cj)
    const hCj = entropy(diff(cjs, i => cjs[i] - cjs[i - 1]))
    const hFault = entropy(samples.map(s => (s.faulted ? 1 : 0)))
    const boundBytes = (Math.min(hDelta, hLinear, hMean) + hCj + hFault) / 8
    const bytesPerSample = storeBytes / samples.length
    const blockBudget = STORE - FIXED - HEADROOM
    const daysHeld = blockBudget / bytesPerSample / PER_DAY
    // what no coder can go below with these records: the readings at the bound, the MACs whole
    const seals = records.filter(r => r[4] === KIND.seal).length
    const others = records.length - samples.length - seals
    const idealStream = (boundBytes * 8 * samples.length + 128 * seals + 10 * others) / 8 / samples.length
    const idealBytesPerSample = (idealStream * cost(BLOCK_MAX_LEN)) / (BLOCK_MAX_LEN - BLOCK_HEADER_LEN)
    return {
        name,
        days,
        samples: samples.length,
        records: records.length,
        blocks: blocks.length,
        bytesPerSample,
        hDelta,
        hLinear,
        hMean,
        hCj,
        hFault,
        boundBytes,
        daysHeld,
        idealBytesPerSample,
        idealDaysHeld: blockBudget / idealBytesPerSample / PER_DAY,
    }
}

type Add = (figure: string, value: number, unit: string, note?: string) => void

/** The issue 11 rows, from the host model. */
export function packRows(add: Add, days = 60): PackFigures[] {
    const all = PACK_PROFILES.map(n => packFigures(n, days))
    for (const f of all) {
        add(
            `offline days held in full detail, ${f.name}`,
            f.daysHeld,
            "days",
            `host model of the v3 flash (src/format pack coder, 224-byte blocks, 24 B entry + roundup8 each, time/seal/battery records every 12 h): ` +
                `${f.bytesPerSample.toFixed(3)} B/sample over ${f.days} d (${f.blocks} blocks); store ${STORE} B - ${FIXED} B of other values - ${HEADROOM} B compaction headroom`,
        )
        add(
            `entropy bound, ${f.name}`,
            f.boundBytes,
            "B/sample",
            `order-0 entropy per sample: tc deltas ${f.hDelta.toFixed(2)} bits, linear-predictor residuals ${f.hLinear.toFixed(2)} bits, ` +
                `16-sample-mean residuals ${f.hMean.toFixed(2)} bits (the best counts), ` +
                `cj deltas ${f.hCj.toFixed(2)} bits, fault flag ${f.hFault.toFixed(3)} bits; stored ${f.bytesPerSample.toFixed(3)} B/sample = ${(f.bytesPerSample / f.boundBytes).toFixed(2)}x the bound (goal <= 1.5x)`,
        )
        add(
            `offline days held with a coder at the entropy bound, ${f.name}`,
            f.idealDaysHeld,
            "days",
            `the same records and store with the readings coded at exactly the bound, 10 bits for each time, battery and alarm record, ` +
                `128 for each seal's MAC, full blocks: ${f.idealBytesPerSample.toFixed(3)} B/sample = ${(f.idealBytesPerSample / f.boundBytes).toFixed(2)}x the bound; ` +
                `the most any coder could hold under today's record policy (12-h seals, a record per band crossing)`,
        )
    }
    return all
}
