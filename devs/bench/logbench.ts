import * as ds from "@devicescript/core"
import { digest } from "@devicescript/crypto"
import { LogStore, blockKey } from "../flash/logstore"
import { kvGet, kvSet, kvDelete, Kv } from "../flash/kv"
import {
    sampleRecord,
    bootRecord,
    configRecord,
    timeRecord,
    alarmRecord,
    sealRecord,
    TIME_SOURCE_NETWORK,
    SFLAG_NO_READING,
} from "../record/record"
import { genesisHead, nextHead, sealMac, evolveKey, bufEq } from "../chain/chain"
import { encodeBatch } from "../batch/batch"
import { postBatch } from "../uplink/http"
import { DEFAULT_CONFIG } from "../app/config"

/**
 * `npm run bench`, the flash and uplink part (bench/flash.ts parses this program's console).
 * Runs in the VM in test mode (`devs run ... --test --test-self-exit`): no ports, no Jacdac bus.
 *
 * Three temperature profiles go through the records a real logger writes (devs/app/logger.ts:
 * boot, config, a time anchor every 12 h, samples every 300 s, alarms on band crossings, a seal with
 * the real seal MAC and key evolution every 12 h), built with the real record builders, into:
 *  - the REAL LogStore (devs/flash/logstore.ts) on the VM's settings store for the first day of each
 *    profile (at most 20 blocks): ms per append, and after every append its blocks and head
 *    compared byte for byte with the model below;
 *  - the same LogStore on a RAM model of the settings store (RamKv: values, and what each write and
 *    each live value costs the store) for 30 days and until the 16 KB ESP32 header is full: the VM's
 *    own store (8 KB) holds about a third of that;
 *  - for the stable profile, the real firmware encodeBatch of the store's pending parts at upload
 *    periods of 1 h, 6 h and 24 h
 *    (every batch printed in hex: the host decodes and verifies them), and the last batch of each
 *    period sent with the firmware's own HTTP client (devs/uplink/http.ts) to the bench's capture
 *    server over HTTP and HTTPS, for the exact request bytes and what TLS adds.
 * Output lines start with "cb:"; key=value fields. Sockets work in test mode; nothing listens here.
 */

const DEVID = Buffer.from("c01dbe4c00000001", "hex")
const K0 = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex")
const ACKKEY = Buffer.from("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f", "hex")
const LOCKEY = Buffer.from("404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f", "hex")
const ENDPOINT = "https://ingest.coldtrace.example/v1/batch"
const NONE = 0xffffffff

const BOOT_UP = 1500 // uptime of the boot and config records
const T0 = 3000 // uptime of the first sample (whole seconds)
const INTERVAL = 300000
// the firmware defaults (devs/app/config.ts epoch, devs/app/logger.ts TIME_ANCHOR_EVERY): 12 h
const EPOCH_MS = 43200000
const ANCHOR_MS = 43200000
const UTC0 = 1767225600000 // 2026-01-01T00:00:00Z at uptime 0
const FW = Buffer.from("ct-fw-03")

/** a record's `t`: the clock counts whole UTC seconds (set at the first anchor) */
function tOf(ms: number): number {
    return Math.floor((UTC0 + ms) / 1000)
}
const DAY_SAMPLES = 288
const MONTH_SAMPLES = 8640
const UPLOAD_FIRST = BOOT_UP + 10000 // Uploader.run() (devs/app/uploader.ts): first upload 10 s after start
const MAX_BATCH_BYTES = 900 // as devs/app/logger.ts
const LIMIT = 16384 - 216 // ESP32 header minus one block of compaction headroom
const ESP32_MAX_BLOCKS = 60 // devs/src/main.ts: live blocks before the logger evicts
const REAL_MAX_BLOCKS = 20 // the VM's store is 8 KB: the real LogStore phase stops at this many blocks

/** settings-store cost of one value: a 24-byte entry plus the value rounded up to 8 bytes */
function cost(len: number): number {
    return 24 + (len <= 0 ? 8 : ((len + 7) >> 3) << 3)
}

function sin(x: number): number {
    const TWO_PI = 6.283185307179586
    x = x - TWO_PI * Math.floor(x / TWO_PI)
    if (x > 3.141592653589793) x -= TWO_PI
    const x2 = x * x
    return x * (1 - (x2 / 6) * (1 - (x2 / 20) * (1 - (x2 / 42) * (1 - (x2 / 72) * (1 - x2 / 110)))))
}

/** xorshift32: deterministic profiles */
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
    f(): number {
        return this.u32() / 4294967296
    }
    int(lo: number, hi: number): number {
        return lo + Math.floor(this.f() * (hi - lo + 1))
    }
}

/** A thermocouple reading per 300 s slot: raw MAX31856 counts as the logger stores them. */
class Profile {
    tc = 0
    cj = 0
    sr = 0
    fl = 0
    rng: Rng
    // fridge / excursion state (seconds since the first sample)
    doorAt = 0
    doorDur = 0
    doorPeak = 0
    exAt = 0
    exKind = 0
    exPeak = 0
    faultAt = 0
    faultLeft = 0
    faultKind = 0
    constructor(
        readonly name: string,
        readonly low: number,
        readonly high: number,
        seed: number,
    ) {
        this.rng = new Rng(seed)
        this.doorAt = 7200 + this.rng.int(0, 3600)
        this.doorDur = 600 + this.rng.int(0, 600)
        this.doorPeak = 256 + this.rng.int(0, 128)
        this.exAt = 86400 + this.rng.int(0, 86400)
        this.faultAt = 43200 + this.rng.int(0, 86400)
    }

    /** door: counts of warming at t (linear while open, then decays with tau 8 min) */
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

    /** excursion: warm (power cut: 2 h up, 1 h hold, 1 h back) or cold (1 h down, 1 h hold, 1 h back) */
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
        const t = k * (INTERVAL / 1000)
        const r = this.rng
        this.sr = 0
        this.fl = 0
        if (this.name === "stable") {
            // dry ice: -78.5 C = -10048 counts, +-2 counts; cold junction constant (20 C)
            this.tc = -10048 + r.int(-2, 2)
            this.cj = 1280
        } else if (this.name === "fridge") {
            // 5 C +- 4 counts (0.03 C); a door opening every 4 h +- 30 min: +2..3 C over 10..20 min
            const warm = this.door(t, 14400, 1800, 600, 600, 256, 128)
            this.tc = Math.round(640 + warm) + r.int(-4, 4)
            this.cj = 1408 // 22 C room, constant
        } else {
            // excursion-heavy: compressor swing +-1 C (50 min), noise +-6 counts, doors every ~2 h
            // (+3..5 C, 10..30 min), an out-of-band excursion every 3..4 days (alternately warm to
            // 10..14 C and cold to -1..0 C), cold junction on a 25 +- 3 C daily cycle, and a burst
            // of 1..3 faulted samples (no reading / open circuit) every 1.5..2.5 days
            const swing = 128 * sin((6.283185307179586 * t) / 3000)
            const warm = this.door(t, 7200, 1800, 600, 1200, 384, 256)
            this.tc = Math.round(640 + swing + warm + this.excursion(t)) + r.int(-6, 6)
            this.cj = Math.round(1600 + 192 * sin((6.283185307179586 * t) / 86400))
            if (t >= this.faultAt) {
                if (!this.faultLeft) {
                    this.faultLeft = r.int(1, 3)
                    this.faultKind = this.faultKind ? 0 : 1
                }
                if (this.faultKind) {
                    this.tc = 0
                    this.cj = 0
                    this.fl = SFLAG_NO_READING
                } else this.sr = 0x01 // MAX31856 OPEN
                this.faultLeft--
                if (!this.faultLeft) this.faultAt += 129600 + r.int(0, 86400)
            }
        }
    }
}

/** The settings store in RAM: values, and what it costs to keep them (live) and to write them. */
class RamKv implements Kv {
    keys: string[] = []
    vals: Buffer[] = []
    /** bytes the store writes (entry + value) over all sets and deletes */
    written = 0
    async get(key: string): Promise<Buffer> {
        const i = this.keys.indexOf(key)
        return i < 0 ? undefined : this.vals[i]
    }
    async set(key: string, value: Buffer): Promise<void> {
        const i = this.keys.indexOf(key)
        if (i < 0) {
            this.keys.push(key)
            this.vals.push(value)
        } else this.vals[i] = value
        this.written += cost(value.length)
    }
    async del(key: string): Promise<void> {
        const i = this.keys.indexOf(key)
        if (i < 0) return
        this.keys.insert(i, -1)
        this.vals.insert(i, -1)
        this.written += cost(0)
    }
    /** settings-store bytes the live values take */
    liveCost(): number {
        let c = 0
        for (const v of this.vals) c += cost(v.length)
        return c
    }
    liveBytes(): number {
        let n = 0
        for (const v of this.vals) n += v.length
        return n
    }
}

/** The real LogStore on a RamKv: what the settings store would hold and write. */
class Model {
    kv = new RamKv()
    store = new LogStore(DEVID, 100000, this.kv)
    newBlocks = 0
    async open() {
        await this.store.open()
    }
    async append(rec: Buffer) {
        const last = this.store.lastBlock
        await this.store.append(rec)
        if (this.store.lastBlock !== last) this.newBlocks++
    }
    blocks(): number {
        return this.store.blocks()
    }
}

/** Batches as the uploader's sendPending() (devs/app/uploader.ts) makes them, at one upload period. */
class Uplink {
    /** first seq not sent yet */
    from = 0
    next = UPLOAD_FIRST
    batches = 0
    last: Buffer = undefined
    constructor(readonly period: number) {}
}

class Run {
    model = new Model()
    real: LogStore = undefined
    realLeft = 0
    realMs: number[] = []
    realChecked = 0
    key: Buffer = K0
    epoch = 0
    sealSeq = NONE
    epochStart = BOOT_UP
    lastAnchor = -1
    inBand = true
    samples = 0
    anchors = 0
    seals = 0
    alarms = 0
    faulted = 0
    uplinks: Uplink[] = []
    capLine: string = undefined
    maxBlocksLine: string = undefined
    constructor(
        readonly prof: Profile,
        readonly configHash: Buffer,
        readonly cfgCost: number,
    ) {}

    async add(rec: Buffer, at: number) {
        for (const u of this.uplinks) await this.uploadDue(u, at)
        const m0 = this.model
        const beforeCost = m0.kv.liveCost()
        const beforeBlocks = m0.blocks()
        await m0.append(rec)
        // capacity: the first record that does not fit ends it (this.samples counts the samples
        // appended before this record)
        if (!this.capLine && m0.kv.liveCost() + this.cfgCost > LIMIT)
            this.capLine =
                `cap_samples=${this.samples} cap_records=${m0.store.nextSeq - 1} ` +
                `cap_cost=${beforeCost + this.cfgCost} cap_blocks=${beforeBlocks}`
        if (!this.maxBlocksLine && m0.blocks() > ESP32_MAX_BLOCKS)
            this.maxBlocksLine = `samples=${this.samples} records=${m0.store.nextSeq - 1}`
        if (this.real && this.realLeft > 0) {
            this.realLeft--
            const t0 = ds.millis()
            await this.real.append(rec)
            this.realMs.push(ds.millis() - t0)
            // the same bytes in flash as in the model: the open block and the tail
            const key = blockKey(this.real.lastBlock)
            const same =
                this.real.lastBlock === m0.store.lastBlock &&
                bufEq(this.real.head, m0.store.head) &&
                bufEq(await kvGet(key), await m0.kv.get(key)) &&
                bufEq(await kvGet("tl"), await m0.kv.get("tl"))
            if (!same) throw new Error(`model and LogStore differ at seq ${m0.store.nextSeq - 1}`)
            this.realChecked++
        }
    }

    /** the uploads due before `at`: what was recorded up to then, as the logger sends it (whole blocks) */
    async uploadDue(u: Uplink, at: number) {
        const store = this.model.store
        while (at >= u.next) {
            while (u.from < store.nextSeq) {
                const p = await store.pending(u.from, MAX_BATCH_BYTES)
                if (!p.count) break
                const body = encodeBatch(DEVID, this.key, 1, this.epoch, u.batches + 1, p)
                const hex = body.toString("hex")
                for (let j = 0; j < hex.length; j += 192) console.log("cb:bh " + hex.slice(j, j + 192))
                console.log(`cb:be period=${u.period} epoch=${this.epoch} ` + `n=${p.count} at=${u.next}`)
                u.batches++
                u.last = body
                u.from = p.firstSeq + p.count
                await ds.sleep(0)
            }
            u.next += u.period * 1000
        }
    }

    async boot() {
        const m = this.model
        await this.add(bootRecord(m.store.nextSeq, tOf(BOOT_UP), 1, 0, 0, m.store.head, FW), BOOT_UP)
        await this.add(configRecord(m.store.nextSeq, tOf(BOOT_UP), this.configHash), BOOT_UP)
    }

    /** one sampling cycle of Logger.sampling(): anchor, sample, alarm, seals due */
    async cycle(k: number) {
        const m = this.model
        const up = T0 + k * INTERVAL
        const now = up - 400 // clock.now() when the cycle starts, before the conversion
        if (this.lastAnchor < 0 || now - this.lastAnchor >= ANCHOR_MS) {
            this.lastAnchor = now
            await this.add(timeRecord(m.store.nextSeq, tOf(now), UTC0 + now, TIME_SOURCE_NETWORK, 0), now)
            this.anchors++
        }
        const p = this.prof
        p.read(k)
        await this.add(sampleRecord(m.store.nextSeq, tOf(up), p.tc, p.cj, p.sr, p.fl), up)
        this.samples++
        if (p.sr || p.fl) this.faulted++
        else {
            const c = p.tc / 128
            const type = c > p.high ? 1 : c < p.low ? 2 : 3
            const inBand = type === 3
            // as the logger: back in band only 0.5 C inside it (ALARM_HYSTERESIS_C)
            const edge = inBand && (c > p.high - 0.5 || c < p.low + 0.5)
            if (inBand !== this.inBand && !edge) {
                this.inBand = inBand
                await this.add(alarmRecord(m.store.nextSeq, tOf(up), type, p.tc), up)
                this.alarms++
            }
        }
        const after = up + 300
        while (after - this.epochStart >= EPOCH_MS) {
            const seq = m.store.nextSeq
            const count = this.sealSeq === NONE ? seq : seq - this.sealSeq - 1
            const mac = sealMac(this.key, DEVID, this.epoch, seq, m.store.head, count)
            await this.add(sealRecord(seq, tOf(after), this.epoch, count, mac), after)
            this.key = evolveKey(this.key, this.epoch + 1)
            this.epoch++
            this.sealSeq = seq
            this.seals++
            this.epochStart += EPOCH_MS
        }
    }

    counts(): string {
        const m = this.model
        return (
            `samples=${this.samples} records=${m.store.nextSeq} ` +
            `blocks=${m.blocks()} bytes=${m.kv.liveBytes()} ` +
            `cost=${m.kv.liveCost()} writes=${m.kv.written} ` +
            `newblocks=${m.newBlocks} seals=${this.seals} ` +
            `anchors=${this.anchors} alarms=${this.alarms} ` +
            `faulted=${this.faulted}`
        )
    }
}

/** End the real LogStore phase: print its timings, then remove its keys from the VM's store. */
async function endReal(run: Run) {
    const ms = run.realMs
    const name = run.prof.name
    for (let i = 0; i < ms.length; i += 40) console.log(`cb:ms profile=${name} ` + ms.slice(i, i + 40).join(","))
    console.log(
        `cb:real profile=${name} appends=${ms.length} ` + `checked=${run.realChecked} blocks=${run.model.blocks()} samples=${run.samples}`,
    )
    const real = run.real
    // (a delete writes an entry even for a key that is not there: delete only what exists)
    for (let n = real.firstBlock; n <= real.lastBlock; ++n) await kvDelete(blockKey(n))
    await kvDelete("lgmeta")
    await kvDelete("tl")
    run.real = undefined
    run.realLeft = 0
    run.realMs = []
}

/** bench/uplink.ts listens on the first free pair: HTTP on the port, HTTPS (TLS 1.3) on port + 1 */
const CAPTURE_PORTS = [18471, 18473, 18475, 18477, 18479]

/**
 * Send the last batch of each upload period with the firmware's own HTTP client (devs/uplink/http.ts
 * postBatch) to the bench's capture server, once over HTTP (the exact request bytes) and once over
 * HTTPS (the bytes TLS adds on the wire). The capture server answers "coldtrace-bench".
 */
async function capture(uplinks: Uplink[]) {
    if (!uplinks.length) return
    let port = 0
    for (const p of CAPTURE_PORTS) {
        try {
            const r = await postBatch(`http://127.0.0.1:${p}/v1/batch`, uplinks[0].last, 5000)
            if (r.status === 200 && r.body.toString("utf-8") === "coldtrace-bench") {
                port = p
                break
            }
        } catch (e) {}
    }
    console.log(`cb:capture port=${port}`)
    if (!port) return
    for (let i = 0; i < uplinks.length; ++i) {
        const u = uplinks[i]
        if (i) await postBatch(`http://127.0.0.1:${port}/v1/batch`, u.last, 5000)
        let tls = "ok"
        try {
            await postBatch(`https://localhost:${port + 1}/v1/batch`, u.last, 10000)
        } catch (e) {
            tls = "failed"
        }
        console.log(`cb:captured period=${u.period} len=${u.last.length} ` + `tls=${tls}`)
    }
}

let lastKv = 0
/**
 * In test mode a settings request hangs once the store has not been used for ~15 s of VM time
 * (measured): touch it every second while the RAM model runs.
 */
async function keepAlive() {
    if (ds.millis() - lastKv < 1000) return
    await kvGet("devid")
    lastKv = ds.millis()
}

async function main() {
    const cfgText = JSON.stringify(DEFAULT_CONFIG)
    const configHash = digest("sha256", Buffer.from(cfgText), Buffer.from(ENDPOINT)).slice(0, 16)
    // the provisioning values a logger holds besides its log (their sizes count against the store)
    const ep = Buffer.alloc(44)
    ep.blitAt(4, K0, 0, 32)
    ep.setAt(36, "u32", NONE)
    const lgack = Buffer.alloc(40)
    // (the log's own keys, lgmeta and tl, are counted with the model's live values)
    const values = [DEVID, ACKKEY, LOCKEY, ep, lgack, Buffer.alloc(8), Buffer.from(ENDPOINT), Buffer.from(cfgText)]
    const names = ["devid", "ackkey", "lockey", "ep", "lgack", "st", "endpoint", "cfg"]
    let cfgCost = 0
    for (let i = 0; i < values.length; ++i) {
        cfgCost += cost(values[i].length)
        console.log(`cb:value key=${names[i]} len=${values[i].length}`)
    }
    // provisioning in the VM's store (also takes the slow first settings write out of the timings)
    for (let i = 0; i < 3; ++i) await kvSet(names[i], values[i])
    await kvSet("endpoint", values[6])
    await kvSet("cfg", values[7])

    const profiles = [
        new Profile("stable", -80, -60, 0x1234567),
        new Profile("fridge", 2, 8, 0x2345678),
        new Profile("excursion", 2, 8, 0x3456789),
    ]
    for (const prof of profiles) {
        const t0 = ds.millis()
        const run = new Run(prof, configHash, cfgCost)
        run.real = new LogStore(DEVID, 100000)
        await run.real.open()
        await run.model.open()
        run.realLeft = 1 << 30
        if (prof.name === "stable") run.uplinks = [new Uplink(3600), new Uplink(21600), new Uplink(86400)]
        await run.boot()
        for (let k = 0; k < 40000; ++k) {
            await run.cycle(k)
            if (run.real && (run.samples === DAY_SAMPLES || run.model.blocks() >= REAL_MAX_BLOCKS)) await endReal(run)
            if (run.samples === MONTH_SAMPLES) {
                // the uploads at 30 days + 11.5 s send everything recorded in the 30 days
                for (const u of run.uplinks) await run.uploadDue(u, 30 * 86400000 + UPLOAD_FIRST)
                for (const u of run.uplinks) console.log(`cb:uplink period=${u.period} batches=${u.batches}`)
                await capture(run.uplinks)
                await keepAlive()
                run.uplinks = []
                console.log(`cb:month profile=${prof.name} ` + run.counts())
            }
            if (run.capLine && run.samples >= MONTH_SAMPLES) break
            await keepAlive()
            await ds.sleep(0)
        }
        console.log(`cb:cap profile=${prof.name} ` + run.capLine + ` cfgcost=${cfgCost} limit=${LIMIT}`)
        console.log(`cb:maxblocks profile=${prof.name} blocks=${ESP32_MAX_BLOCKS} ` + run.maxBlocksLine)
        console.log(`cb:profile name=${prof.name} vm_ms=${ds.millis() - t0}`)
    }
    console.log("cb:done")
    ds.restart()
}

await main()
