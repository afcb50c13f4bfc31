// A host-side logger for load tests and the fleet bench: the firmware's log as its records are
// written (docs/format.md), with its own random keys, a boot record, samples, a seal at each epoch
// end (then the key evolves and the old one is dropped), hourly batches under the current epoch
// key, and acks checked with the ack key against its own heads. No VM: the real host codec.
import {
    BOOT_REASON,
    BOOT_RTC,
    KIND,
    decodeAck,
    encodeBatch,
    encodeRecord,
    evolveKey,
    genesisHead,
    nextHead,
    sealMac,
    type LogRecord,
} from "../format/index.js"
import { deviceSecretJson, newDeviceKeys, type DeviceKeys } from "../provision/provision.js"

export class EmulatedLogger {
    readonly keys: DeviceKeys
    readonly devid: string
    private key: Buffer
    epoch = 0
    private sealSeq = -1
    boots = 0
    /** seconds on the emulated real-time clock (it keeps running across boots) */
    private t = 0
    private head: Buffer
    /** records after the acknowledged seq, with their heads */
    private pending: { seq: number; bytes: Buffer; head: Buffer }[] = []
    /** every record and head (tests compare the server's copy with it; off for large fleets) */
    readonly history: { bytes: Buffer; head: Buffer }[] | null
    private nextSeq = 0
    ackSeq: number | null = null
    private hours = 0

    constructor(keys: DeviceKeys = newDeviceKeys(), o: { history?: boolean } = {}) {
        this.history = o.history ? [] : null
        this.keys = keys
        this.devid = keys.devid.toString("hex")
        this.key = Buffer.from(keys.k0)
        this.head = genesisHead(this.devid)
    }

    /** What the server is registered with (never lockey). */
    registration(label?: string) {
        return { devid: this.devid, k0: this.keys.k0, ackkey: this.keys.ackkey, label }
    }
    /** device-secret.json, the escrow a verifier needs */
    secretJson() {
        return deviceSecretJson(this.keys)
    }

    /** the UTC (ms) the last verified ack carried */
    serverUtc: number | null = null

    private push(r: { kind: number; t: number; [field: string]: unknown }) {
        const seq = this.nextSeq++
        const bytes = encodeRecord({ ...r, seq } as unknown as LogRecord)
        this.head = nextHead(this.head, bytes)
        this.pending.push({ seq, bytes, head: this.head })
        this.history?.push({ bytes, head: this.head })
    }

    /** Seals the open epoch and evolves the key (the old one is gone). */
    seal(): void {
        const seq = this.nextSeq
        const mac = sealMac(this.key, this.devid, this.epoch, seq, this.head, seq - this.sealSeq - 1)
        this.push({ kind: KIND.seal, t: this.t, epoch: this.epoch, count: seq - this.sealSeq - 1, mac })
        this.sealSeq = seq
        this.epoch++
        const next = evolveKey(this.key, this.epoch)
        this.key.fill(0)
        this.key = next
    }

    /** A start-up: the open epoch is sealed first (after the first boot), then the boot record. */
    boot(): this {
        if (this.nextSeq > 0) this.seal()
        this.boots++
        const prev = this.nextSeq === 0 ? Buffer.alloc(8) : this.head.subarray(0, 8)
        this.push({
            kind: KIND.boot,
            t: this.t,
            boot: this.boots,
            reason: BOOT_REASON.powerOn,
            rtc: this.boots === 1 ? BOOT_RTC.lost | BOOT_RTC.unset : BOOT_RTC.backup,
            prev: Buffer.from(prev),
            fw: Buffer.from("emulated", "ascii"),
        })
        return this
    }

    /** An hour of logging: `samples` samples evenly spread; a seal every `epochHours` hours. */
    hour(samples = 12, epochHours = 12, tc = -9000): this {
        if (this.boots === 0) this.boot()
        const step = Math.floor(3600 / samples)
        for (let i = 0; i < samples; i++) {
            this.t += step
            this.push({ kind: KIND.sample, t: this.t, tc: tc + ((this.nextSeq * 7) % 5), cj: -640, sr: 0, sflags: 0 })
        }
        if (++this.hours % epochHours === 0) this.seal()
        return this
    }

    /** The batch of everything not yet acknowledged, under the current epoch key (null: nothing to send). */
    batch(): Buffer | null {
        if (!this.pending.length) return null
        return encodeBatch({
            devid: this.devid,
            boot: this.boots,
            epoch: this.epoch,
            firstSeq: this.pending[0].seq,
            records: this.pending.map(p => p.bytes),
            key: this.key,
        })
    }

    /**
     * A batch of records from..to under the current key (needs `history`); `fork` changes their
     * temperatures first, as a logger restored from an old image and logging on would.
     */
    rangeBatch(from: number, to: number, o: { fork?: boolean; prev?: boolean } = {}): Buffer {
        if (!this.history) throw new Error("rangeBatch needs { history: true }")
        const records = this.history.slice(from, to + 1).map(h => {
            if (!o.fork) return h.bytes
            const b = Buffer.from(h.bytes)
            if (b[4] === KIND.sample) b.writeInt32LE(b.readInt32LE(10) + 1000, 10)
            return b
        })
        return encodeBatch({
            devid: this.devid,
            boot: this.boots,
            epoch: this.epoch,
            firstSeq: from,
            prevHead: o.prev && from > 0 ? this.history[from - 1].head : null,
            records,
            key: this.key,
        })
    }

    /** An ack from the server: its MAC must verify and its head be ours; frees what it covers. Returns the acked seq. */
    ack(body: Buffer): number | null {
        const a = decodeAck(body, this.keys.ackkey)
        if (a.devid !== this.devid) throw new Error(`ack for device ${a.devid}`)
        if (a.utc) this.serverUtc = a.utc
        if (a.ackSeq === null) return null
        const mine = this.pending.find(p => p.seq === a.ackSeq)
        if (mine && !mine.head.equals(a.head!)) throw new Error(`ack head for seq ${a.ackSeq} is not this logger's`)
        if (!mine && (this.ackSeq === null || a.ackSeq > this.ackSeq))
            throw new Error(`ack of seq ${a.ackSeq}, which this logger never sent`)
        this.pending = this.pending.filter(p => p.seq > a.ackSeq!)
        this.ackSeq = Math.max(this.ackSeq ?? -1, a.ackSeq)
        return a.ackSeq
    }

    get lastSeq(): number {
        return this.nextSeq - 1
    }
}
