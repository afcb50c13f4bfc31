// Test data for the reports without the DeviceScript VM: a logger's log written host-side with the
// real format code, the way the firmware writes it (devs/app/logger.ts): a boot record, the config
// hash and a time anchor at every start, samples, alarm records, encrypted fixes and stops, a seal
// at the end of every epoch and at every restart. Then the real ingest server stores it from real
// batches, and a flash export is laid out the way the device keeps it.
import { createHash } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import {
    ALARM_TYPE,
    BOOT_RTC,
    KIND,
    TIME_FLAG,
    degToLoc,
    encodeBatch,
    encodeRecord,
    encryptLoc,
    epochKey,
    genesisHead,
    nextHead,
    sealMac,
    decodeRecord,
    type BootRecord,
    type LogRecord,
    type SampleRecord,
    type SealRecord,
} from "../../src/format/index.js"
import { startIngestServer } from "../../src/ingest/server.js"
import { registerDevice } from "../../src/ingest/db.js"
import { EXPORT_FORMAT, type DeviceExportFile } from "../../src/sim/export.js"
import { flashImage, imageSettingsHex } from "../../src/sim/flash-image.js"

const MIN = 60_000
const HOUR = 60 * MIN

/** Deterministic 32-byte keys from a name (tests only). */
export const testKey = (name: string) => createHash("sha256").update(name).digest()

/**
 * A logger writing its log as the firmware does; times are world UTC ms, the device sees only its
 * real-time clock `t` (seconds). The clock lost its power before the first start (it counts from 0),
 * is set from the first time record (SET), and keeps running on its backup supply across restarts.
 */
export class LogWriter {
    readonly k0: Buffer
    readonly ackkey: Buffer
    readonly lockey: Buffer
    readonly records: LogRecord[] = []
    readonly bytes: Buffer[] = []
    readonly heads: Buffer[] = []
    /** seq -> world UTC ms when it was recorded (what the timeline must reproduce) */
    readonly worldTime = new Map<number, number>()
    head: Buffer
    epoch = 0
    /** the epoch key in force after each record (what a batch ending there is MAC'd with) */
    readonly epochAt: number[] = []
    readonly bootAt: number[] = []
    private sealSeq = -1
    boot = 0
    /** world time at which the real-time clock read 0 */
    private rtcZero = 0
    /** the clock has been set since it lost power */
    private rtcSet = false
    now = 0
    /** the program identity each boot record states (8 bytes) */
    fw = Buffer.from("testfw01", "ascii")
    /** what each boot's config record carries: the provisioned configuration's hash */
    configHash = testKey("config").subarray(0, 16)

    constructor(
        readonly devid: string,
        seed = devid,
        keys?: { k0: Buffer; ackkey: Buffer; lockey: Buffer },
    ) {
        this.k0 = keys?.k0 ?? testKey(`${seed}/k0`)
        this.ackkey = keys?.ackkey ?? testKey(`${seed}/ackkey`)
        this.lockey = keys?.lockey ?? testKey(`${seed}/lockey`)
        this.head = genesisHead(devid)
    }

    /**
     * A writer holding a log someone else wrote (the real firmware in the simulator): every record's
     * head, the epoch in force after it (a seal of epoch E starts E + 1) and its boot.
     */
    static fromLog(devid: string, keys: { k0: Buffer; ackkey: Buffer; lockey: Buffer }, bytes: Buffer[]): LogWriter {
        const w = new LogWriter(devid, devid, keys)
        for (const b of bytes) {
            const r = decodeRecord(b)
            if (r.seq !== w.seq) throw new Error(`fromLog: record ${w.seq} is missing (got seq ${r.seq})`)
            if (r.kind === KIND.boot) w.boot = (r as BootRecord).boot
            if (r.kind === KIND.seal) w.epoch = (r as SealRecord).epoch + 1
            w.keep(r, b)
        }
        return w
    }

    /** the record at the next seq, with its head, the epoch in force after it and its boot */
    private keep(rec: LogRecord, b: Buffer) {
        this.records.push(rec)
        this.bytes.push(b)
        this.head = nextHead(this.head, b)
        this.heads.push(this.head)
        this.epochAt.push(this.epoch)
        this.bootAt.push(this.boot)
    }

    get seq(): number {
        return this.records.length
    }
    /** the real-time clock at world time `utc` */
    rtcAt(utc: number): number {
        return Math.floor((utc - this.rtcZero) / 1000)
    }

    private push(r: Record<string, unknown> & { kind: number }): LogRecord {
        const rec = { ...r, seq: this.seq, t: r.t ?? this.rtcAt(this.now) } as unknown as LogRecord
        this.keep(rec, encodeRecord(rec))
        this.worldTime.set(rec.seq, this.now)
        return rec
    }

    /** Power on at world time `utc`: seal the epoch left open, boot record, config hash, time anchor. */
    start(utc: number, reason = 0): this {
        if (this.seq > 0) this.seal()
        this.boot++
        this.now = utc
        const first = this.boot === 1
        if (first) this.rtcZero = utc // the clock starts from 0 at the first power-on
        const prev = this.seq ? this.head.subarray(0, 8) : Buffer.alloc(8)
        this.push({
            kind: KIND.boot,
            boot: this.boot,
            reason,
            rtc: first ? BOOT_RTC.lost | BOOT_RTC.unset : BOOT_RTC.backup,
            prev: Buffer.from(prev),
            fw: this.fw,
        })
        this.push({ kind: KIND.config, hash: this.configHash })
        this.push({ kind: KIND.time, utc: this.now, source: 1, flags: this.rtcSet ? 0 : TIME_FLAG.set })
        if (!this.rtcSet) {
            this.rtcZero = 0 // set to UTC: it now reads UTC seconds
            this.rtcSet = true
        }
        return this
    }

    advanceTo(utc: number): this {
        this.now = utc
        return this
    }

    /** One sample at the current time; `c` in °C, or a fault. */
    sample(c: number, fault: { sr?: number; sflags?: number } = {}): this {
        const faulted = (fault.sr ?? 0) !== 0 || (fault.sflags ?? 0) !== 0
        this.push({
            kind: KIND.sample,
            tc: faulted && fault.sflags ? 0 : Math.round(c * 128),
            cj: faulted && fault.sflags ? 0 : 1280,
            sr: fault.sr ?? 0,
            sflags: fault.sflags ?? 0,
        })
        return this
    }

    /** the cell voltage, as the firmware records it at a bounded rate */
    battery(mv: number, level = 0): this {
        this.push({ kind: KIND.battery, mv, level, flags: 0 })
        return this
    }

    alarm(type: number, c: number): this {
        this.push({ kind: KIND.alarm, type, tc: Math.round(c * 128) })
        return this
    }

    fix(lat: number, lon: number): this {
        const seq = this.seq
        this.push({ kind: KIND.fix, loc: encryptLoc(this.lockey, seq, degToLoc(lat), degToLoc(lon), this.locRandom(seq)), fix: 3, sv: 9 })
        return this
    }

    /** A stop that began at world time `since` and ends now. */
    stop(since: number, lat: number, lon: number): this {
        const seq = this.seq
        this.push({
            kind: KIND.stop,
            start: this.rtcAt(since),
            loc: encryptLoc(this.lockey, seq, degToLoc(lat), degToLoc(lon), this.locRandom(seq)),
        })
        return this
    }

    /** the random part of a loc, deterministic so fixtures are reproducible */
    private locRandom(seq: number): Buffer {
        return testKey(`${this.devid}/loc/${seq}`).subarray(0, 8)
    }

    seal(): this {
        const seq = this.seq
        const count = seq - this.sealSeq - 1
        const mac = sealMac(epochKey(this.k0, this.epoch), this.devid, this.epoch, seq, this.head, count)
        this.push({ kind: KIND.seal, epoch: this.epoch, count, mac })
        this.sealSeq = seq
        this.epoch++
        this.epochAt[seq] = this.epoch
        return this
    }

    /** The store is full: summarise records first..last in an evicted record (as the firmware does) and seal it. */
    evict(first: number, last: number, band = { low: 2, high: 8 }): this {
        const gone = this.records.slice(first, last + 1).filter(r => r.kind === KIND.sample) as SampleRecord[]
        const good = gone.filter(r => !r.sr && !r.sflags)
        const times = gone.map(r => r.t)
        this.push({
            kind: KIND.evicted,
            first,
            last,
            samples: gone.length,
            tFirst: times.length ? Math.min(...times) : 0,
            tLast: times.length ? Math.max(...times) : 0,
            minTc: good.length ? Math.min(...good.map(r => r.tc)) : 0,
            maxTc: good.length ? Math.max(...good.map(r => r.tc)) : 0,
            outMin: good.filter(r => r.tc / 128 < band.low || r.tc / 128 > band.high).length * 5,
            srOr: gone.reduce((a, r) => a | r.sr, 0),
            sflagsOr: gone.reduce((a, r) => a | r.sflags, 0),
        })
        return this.seal()
    }

    /** The keys file (`device-secret.json`); `lockey: false` leaves the location key out. */
    secretJson(o: { lockey?: boolean } = {}): Record<string, string> {
        return {
            devid: this.devid,
            k0: this.k0.toString("hex"),
            ackkey: this.ackkey.toString("hex"),
            ...(o.lockey === false ? {} : { lockey: this.lockey.toString("hex") }),
        }
    }
}

// across the switch to summer time in Europe (2025-03-30 01:00 UTC): local times go from +01:00 to +02:00
export const SHIPMENT_T0 = Date.parse("2025-03-29T06:00:00Z")

/** Where the route goes: Puurs (BE) to Lille to Paris, 1e-7-degree exact. */
export const ROUTE = [
    { lat: 51.0744, lon: 4.2915 },
    { lat: 50.8503, lon: 4.3517 },
    { lat: 50.6292, lon: 3.0573 },
    { lat: 49.8941, lon: 2.3022 },
    { lat: 48.8566, lon: 2.3522 },
]

export interface ShipmentLog {
    w: LogWriter
    /** world times of what happened, for the tests' expectations */
    excursion: { start: number; end: number; peakC: number }
    openFault: { start: number; end: number; samples: number }
    powerCut: { at: number; back: number }
    stops: { start: number; end: number; lat: number; lon: number }[]
    end: number
}

/**
 * A 2-day shipment sampled every 5 min, in the middle of `band` (default refrigerated, 2..8 °C):
 * an excursion 1.5 °C above the band with the device's alarm records, a 30-minute open
 * thermocouple, a 2-hour power cut, hourly fixes along ROUTE with two stops, 12-hour epochs, an
 * unsealed tail.
 */
export function shipmentLog(devid = "c01d7aceb0000001", band = { low: 2, high: 8 }): ShipmentLog {
    const w = new LogWriter(devid)
    const mid = (band.low + band.high) / 2
    const t0 = SHIPMENT_T0
    const step = 5 * MIN
    const end = t0 + 48 * HOUR
    const excursion = { start: t0 + 10 * HOUR, end: t0 + 10 * HOUR + 40 * MIN, peakC: band.high + 1.5 }
    const openFault = { start: t0 + 20 * HOUR, end: t0 + 20 * HOUR + 25 * MIN, samples: 6 }
    const powerCut = { at: t0 + 30 * HOUR, back: t0 + 32 * HOUR }
    const stops = [
        { start: t0 + 6 * HOUR, end: t0 + 8 * HOUR, ...ROUTE[1] },
        { start: t0 + 26 * HOUR, end: t0 + 28 * HOUR, ...ROUTE[3] },
    ]
    w.start(t0)
    let epochStart = t0
    let inAlarm = false
    for (let t = t0 + step; t <= end; t += step) {
        if (t > powerCut.at && t < powerCut.back) continue
        if (t >= powerCut.back && w.boot === 1) {
            w.start(powerCut.back)
            epochStart = powerCut.back
            if (t === powerCut.back) continue
        }
        w.advanceTo(t)
        if (t - epochStart >= 12 * HOUR) {
            w.seal()
            epochStart = t
        }
        const hour = (t - t0) / HOUR
        // the temperature: 5 °C with a slow wobble, the excursion rising to its peak and back
        let c = mid + 0.75 * Math.sin(hour / 3)
        if (t >= excursion.start && t < excursion.end) c = t === excursion.start + 20 * MIN ? excursion.peakC : band.high + 0.75
        c = Math.round(c * 128) / 128
        if (t >= openFault.start && t <= openFault.end) w.sample(0, { sr: 0x01 })
        else w.sample(c)
        if (c > band.high && !inAlarm && !(t >= openFault.start && t <= openFault.end)) {
            w.alarm(ALARM_TYPE.aboveBand, c)
            inAlarm = true
        } else if (c <= band.high && inAlarm && !(t >= openFault.start && t <= openFault.end)) {
            w.alarm(ALARM_TYPE.backInBand, c)
            inAlarm = false
        }
        for (const s of stops) if (t === s.end) w.stop(s.start, s.lat, s.lon)
        if ((t - t0) % (6 * HOUR) === 0) w.battery(4100 - Math.round((t - t0) / HOUR) * 3)
        if ((t - t0) % HOUR === 0) {
            const i = Math.min(ROUTE.length - 1, Math.floor(((t - t0) / (end - t0)) * ROUTE.length))
            w.fix(ROUTE[i].lat, ROUTE[i].lon)
        }
    }
    return { w, excursion, openFault, powerCut, stops, end }
}

/** A fresh scratch folder under the OS temp dir. */
export function scratchDir(name: string): string {
    return mkdtempSync(path.join(os.tmpdir(), `coldtrace-${name}-`))
}

/**
 * Store the log in a real ingest database: start the real server on loopback, register the device,
 * POST the records as batches of `batch` records (each MAC'd with the epoch key in force after its
 * last record, as the device sends them), leaving the last `keepOnDevice` records unsent.
 */
export async function ingestDb(
    w: LogWriter,
    file: string,
    o: { batch?: number; keepOnDevice?: number; skip?: { first: number; last: number } } = {},
): Promise<number> {
    const server = await startIngestServer({ dbPath: file, log: () => {} })
    try {
        registerDevice(server.db, { devid: w.devid, k0: w.k0, ackkey: w.ackkey })
        const size = o.batch ?? 120
        const upTo = w.seq - (o.keepOnDevice ?? 0)
        let acked = -1
        let from = 0
        while (from < upTo) {
            // records the device evicted unsent: the next batch starts a new segment (PREV)
            const skip = o.skip && from >= o.skip.first && from <= o.skip.last ? o.skip : undefined
            if (skip) from = skip.last + 1
            const stop = o.skip && from < o.skip.first ? o.skip.first : upTo
            const to = Math.min(stop, from + size) - 1
            const epoch = w.epochAt[to]
            const body = encodeBatch({
                devid: w.devid,
                boot: w.bootAt[to],
                epoch,
                firstSeq: from,
                prevHead: skip ? w.heads[skip.last] : undefined,
                records: w.bytes.slice(from, to + 1),
                key: epochKey(w.k0, epoch),
            })
            const res = await fetch(`${server.url}/v1/batch`, { method: "POST", body: new Uint8Array(body) })
            if (res.status !== 200) throw new Error(`batch ${from}..${to}: ${res.status} ${res.headers.get("x-coldtrace-reason")}`)
            await res.arrayBuffer()
            acked = to
            from = to + 1
        }
        return acked
    } finally {
        await server.close()
    }
}

/** The device's flash as `coldtrace sim` exports it: every record in blocks from seq 0, lgack at `ackSeq`. */
export function flashExport(w: LogWriter, ackSeq: number | null): DeviceExportFile {
    const img = flashImage({
        records: w.bytes,
        baseHead: genesisHead(w.devid),
        firstBlock: 1,
        ack: ackSeq === null ? null : { ackSeq, head: w.heads[ackSeq], boot: w.boot },
        boot: w.boot,
    })
    return { format: EXPORT_FORMAT, devid: w.devid, settings: imageSettingsHex(img) }
}

export function writeJson(file: string, value: unknown): string {
    writeFileSync(file, JSON.stringify(value, null, 1))
    return file
}

export const SHIPMENT_FILE = {
    shipmentId: "SHP-2025-0042",
    sscc: "106141412345678908",
    product: { name: "Influenza vaccine 0.5 ml", gtin: "09521234543213" },
    lot: "FJ8765",
    sender: { name: "Manufacturing site, Puurs", gln: "5412345000013" },
    receiver: { name: "Nursing home, Paris", gln: "3012345000017" },
    alarmPreset: "refrigerated",
}

export interface ReportFixture {
    dir: string
    db: string
    export: string
    keys: string
    /** the same keys without the location key */
    keysNoLoc: string
    shipment: string
    log: ShipmentLog
    /** the last seq the server acknowledged (the device holds 20 more) */
    acked: number
}

/** The shipment log in a real ingest database and a flash export, with its keys and shipment files. */
export async function reportFixture(
    name: string,
    o: { band?: { low: number; high: number }; preset?: unknown } = {},
): Promise<ReportFixture> {
    const dir = scratchDir(name)
    const log = shipmentLog(undefined, o.band)
    const db = path.join(dir, "ingest.sqlite")
    const acked = await ingestDb(log.w, db, { keepOnDevice: 20 })
    return {
        dir,
        db,
        export: writeJson(path.join(dir, "device-export.json"), flashExport(log.w, acked)),
        keys: writeJson(path.join(dir, "device-secret.json"), log.w.secretJson()),
        keysNoLoc: writeJson(path.join(dir, "device-secret-noloc.json"), log.w.secretJson({ lockey: false })),
        shipment: writeJson(path.join(dir, "shipment.json"), { ...SHIPMENT_FILE, alarmPreset: o.preset ?? SHIPMENT_FILE.alarmPreset }),
        log,
        acked,
    }
}
