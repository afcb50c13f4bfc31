import * as ds from "@devicescript/core"
import { I2cBus } from "../hal/i2c"
import { Clock } from "../hal/clock"

/*
 * Register-level Blues Notecard model (serial-over-I2C at 0x17) for the simulator and the unit tests.
 * It implements the same I2cBus transport the driver uses on the board, so the real driver code runs
 * against it. Written from the hardware notes and the Notecard API, independently of the driver.
 *
 * Wire protocol modelled:
 * - write `[len][len bytes]` (len 1..253) appends to the request line; "\n" ends it;
 * - write `[0x00][n]` asks for up to n reply bytes: the read that follows (the same xfer, after the
 *   repeated start, or a separate read-only xfer) returns `[available after this read][k][k bytes]`
 *   with k = min(n, available, 253), zero-padded to the length the host reads; n = 0 only asks;
 * - a reply becomes readable `replyDelayMs` after its request line ended (all of it at once);
 *   replies end with "\r\n"; a bare "\n" is answered with a bare "\r\n" (note-c's resync);
 * - more than SEGMENT_OVERRUN bytes written without a pause of >= 250 ms, oversize or inconsistent
 *   chunks, reads nobody asked for are recorded in `violations` (the real card would lose bytes);
 * - other addresses throw like a NACK; faults: "nack" (every xfer throws), "bus_ff" (reads 0xFF,
 *   writes lost: no card on the bus), "hang" (accepts writes, never has anything to read).
 *
 * Requests modelled: hub.set, note.add, hub.sync, hub.sync.status, card.time, card.status,
 * card.wireless; anything else gets {"err":"unknown request"}, a line that is not a JSON object gets
 * an err reply. `cmd` requests are executed without a reply, as on the card.
 *
 * Sync behaviour (as on the card): note.add only queues the note on the card. A sync is requested by
 * hub.sync, note.add with sync:true, continuous mode (notes pending), or periodic mode every
 * `outbound` minutes. A sync needs a ProductUID (hub.set) and the network (`connected` input); while
 * disconnected it stays pending and the notes stay queued. `syncMs` after it could start, the queued
 * notes are handed over to Notehub, where `takeOutbound()` (the simulated relay) collects them.
 * Not modelled: inbound notes, templates, .db files, penalty boxes, the real card's MBs of storage
 * (the queue holds `capacityBytes`, small by default because the simulator VM heap is ~64 KB).
 */

export type NotecardFault = "none" | "nack" | "bus_ff" | "hang"

export interface NotecardInputs {
    /** network (and Notehub) reachable */
    connected?: boolean
    /** UTC ms from the network, advancing with the model's clock; NaN or undefined: no network time */
    utcMs?: number
    fault?: NotecardFault
}

export interface Note {
    file: string
    /** the note's JSON body, undefined if none */
    body: any
    /** base64 payload as the host sent it, "" if none */
    payload: string
    /** UTC seconds when the card queued it, 0 if the card had no time */
    time: number
}

export interface NotecardModelOptions {
    /** device ms from the end of a request line to its reply being readable, default 20 */
    replyDelayMs?: number
    /** device ms a sync takes once it can start, default 3000 */
    syncMs?: number
    /** bytes of queued notes (payload + body JSON) the card holds, default 24000 */
    capacityBytes?: number
}

const ADDR = 0x17
const CHUNK_MAX = 253
const AVAIL_MAX = 253
/** the card's receive buffer: bytes it can take without a segment pause (generous: note-c sends up to ~500) */
export const SEGMENT_OVERRUN = 512
export const SEGMENT_PAUSE_MS = 250
/** longest request line accepted */
export const MAX_LINE = 8192
const MODES = ["periodic", "continuous", "minimum", "off"]

function hex8(v: number) {
    return "0x" + Buffer.from([v & 0xff]).toString("hex")
}

/**
 * A plausible base64 text: alphabet, length multiple of 4, "=" only as 1-2 final characters.
 * Yields every 512 characters (a fiber running ~100k VM instructions without a yield panics).
 */
async function looksBase64(s: string): Promise<boolean> {
    const b = Buffer.from(s)
    if (b.length % 4 !== 0) return false
    for (let i = 0; i < b.length; i++) {
        if ((i & 511) === 511) await ds.sleep(0)
        const c = b[i]
        const alpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
        if (alpha || c === 0x2b || c === 0x2f) continue
        if (c === 0x3d && i >= b.length - 2 && (i === b.length - 1 || b[b.length - 1] === 0x3d)) continue
        return false
    }
    return true
}

interface PendingReply {
    at: number
    bytes: Buffer
}

export class NotecardModel implements I2cBus {
    // ---- inputs and knobs
    connected = false
    fault: NotecardFault = "none"
    replyDelayMs: number
    syncMs: number
    capacityBytes: number

    // ---- hub.set configuration, as the card holds it
    product: string = undefined
    sn: string = undefined
    mode = "periodic"
    outbound = 60
    inbound = 60

    // ---- observation
    /** every request line the card received, as text (without the newline), most recent last */
    readonly lines: string[] = []
    /** protocol rules the host broke */
    readonly violations: string[] = []
    /** xfers answered (including throwing ones) */
    xfers = 0
    /** completed syncs */
    syncs = 0
    /** notes queued on the card, not yet synced */
    queued: Note[] = []

    private utcBase = NaN // utcMs input
    private utcSetAt = 0 // model clock when it was given
    private rx = Buffer.alloc(64) // request line being received
    private rxLen = 0
    private rxOverflow = false
    private out = Buffer.alloc(0) // reply bytes readable now
    private outPos = 0
    private replies: PendingReply[] = [] // replies not yet readable
    private askN = -1 // a `[0][n]` write waiting for its read-only xfer
    private segBytes = 0
    private lastWriteAt = -1000000
    private usedBytes = 0
    private handed: Note[] = [] // synced to Notehub, waiting for takeOutbound()
    private syncPending = false
    private syncRequestedAt = -1 // explicit requests (hub.sync, sync:true), for `requested`
    private syncWantedAt = 0 // when the pending sync was requested (any cause)
    private connectedSince = 0
    private lastSyncAt = 0 // completion (or boot), for the periodic timer
    private lastCompletedAt = -1
    private queuedSince = 0 // when the oldest queued note was added

    constructor(
        readonly clock: Clock,
        options: NotecardModelOptions = {}
    ) {
        this.replyDelayMs = options.replyDelayMs === undefined ? 20 : options.replyDelayMs
        this.syncMs = options.syncMs === undefined ? 3000 : options.syncMs
        this.capacityBytes = options.capacityBytes === undefined ? 24000 : options.capacityBytes
        this.lastSyncAt = clock.now()
    }

    setInputs(inputs: NotecardInputs) {
        if (inputs.connected !== undefined && inputs.connected !== this.connected) {
            this.tick() // a sync that finished before the change still counts
            this.connected = inputs.connected
            if (this.connected) this.connectedSince = this.clock.now()
        }
        if (inputs.utcMs !== undefined) {
            this.utcBase = inputs.utcMs
            this.utcSetAt = this.clock.now()
        }
        if (inputs.fault !== undefined) this.fault = inputs.fault
    }

    /** the card's UTC ms, NaN without network time */
    utcMs(): number {
        if (!(this.utcBase > 0)) return NaN
        return this.utcBase + (this.clock.now() - this.utcSetAt)
    }

    /** notes handed over to Notehub since the last call, in order (for the simulated relay) */
    takeOutbound(): Note[] {
        this.tick()
        const r = this.handed
        this.handed = []
        return r
    }

    /** a sync is waiting to start or to finish */
    syncRequested(): boolean {
        this.tick()
        return this.syncPending
    }

    // ---- I2C ------------------------------------------------------------------------------------

    async xfer(address: number, tx: Buffer, rxLen: number): Promise<Buffer> {
        this.xfers++
        if (address !== ADDR) throw new Error("I2C NACK at " + hex8(address))
        if (this.fault === "nack") throw new Error("I2C NACK at " + hex8(address) + " (Notecard)")
        const rx = Buffer.alloc(rxLen)
        if (this.fault === "bus_ff") {
            rx.fillAt(0, rxLen, 0xff)
            return rx
        }
        this.tick()
        if (tx.length > 0) {
            if (tx[0] === 0) {
                if (tx.length !== 2) this.violations.push("read request of " + tx.length + " bytes")
                const n = tx.length > 1 ? tx[1] : 0
                if (rxLen > 0) this.answer(n, rx)
                else this.askN = n
                return rx
            }
            await this.receiveChunk(tx)
            if (rxLen > 0) this.violations.push("read after a data chunk")
            return rx
        }
        if (rxLen > 0) {
            if (this.askN < 0) {
                this.violations.push("read without a [0x00][n] request")
                return rx
            }
            this.answer(this.askN, rx)
            this.askN = -1
        }
        return rx
    }

    private answer(n: number, rx: Buffer) {
        if (this.fault === "hang") return // [0][0]: nothing, ever
        this.releaseReplies()
        const avail = this.out.length - this.outPos
        let k = Math.min(n, avail, AVAIL_MAX)
        if (rx.length < 2) return
        if (k > rx.length - 2) k = rx.length - 2
        rx.blitAt(2, this.out, this.outPos, k)
        this.outPos += k
        rx[0] = Math.min(avail - k, AVAIL_MAX)
        rx[1] = k
        if (this.outPos === this.out.length) {
            this.out = Buffer.alloc(0)
            this.outPos = 0
        }
    }

    private async receiveChunk(tx: Buffer) {
        const len = tx[0]
        if (len > CHUNK_MAX) this.violations.push("chunk of " + len + " bytes (max 253)")
        if (tx.length !== len + 1) this.violations.push("chunk header says " + len + ", carries " + (tx.length - 1))
        const now = this.clock.now()
        if (now - this.lastWriteAt >= SEGMENT_PAUSE_MS) this.segBytes = 0
        this.lastWriteAt = now
        this.segBytes += tx.length - 1
        if (this.segBytes > SEGMENT_OVERRUN) {
            this.violations.push("segment overrun: " + this.segBytes + " bytes without a 250 ms pause")
            this.segBytes = 0
        }
        if (this.fault === "hang") return
        for (let i = 1; i < tx.length; i++) {
            const c = tx[i]
            if (c === 0x0a) {
                await this.endLine()
                continue
            }
            if (this.rxLen >= MAX_LINE) {
                this.rxOverflow = true
                continue
            }
            if (this.rxLen === this.rx.length) {
                const bigger = Buffer.alloc(Math.min(this.rx.length * 2, MAX_LINE))
                bigger.blitAt(0, this.rx, 0, this.rxLen)
                this.rx = bigger
            }
            this.rx[this.rxLen++] = c
        }
    }

    private async endLine() {
        const overflow = this.rxOverflow
        let end = this.rxLen
        if (end > 0 && this.rx[end - 1] === 0x0d) end--
        const text = this.rx.slice(0, end).toString()
        this.rxLen = 0
        this.rxOverflow = false
        if (this.rx.length > 256) this.rx = Buffer.alloc(64)
        if (overflow) {
            this.violations.push("request line over " + MAX_LINE + " bytes")
            this.lines.push(text.slice(0, 64))
            this.reply({ err: "request too large {io}" })
            return
        }
        this.lines.push(text)
        if (text.trim().length === 0) {
            this.queueReply(Buffer.from("\r\n"))
            return
        }
        let req: any
        try {
            req = JSON.parse(text)
        } catch (e: any) {
            req = undefined
        }
        if (!req || typeof req !== "object" || Array.isArray(req)) {
            this.reply({ err: "malformed request: not a JSON object {io}" })
            return
        }
        const isCmd = typeof req.cmd === "string" && typeof req.req !== "string"
        const name = isCmd ? req.cmd : req.req
        const rsp = typeof name === "string" ? await this.handle(name, req) : { err: "no request {io}" }
        if (!isCmd) this.reply(rsp)
    }

    private reply(rsp: any) {
        this.queueReply(Buffer.from(JSON.stringify(rsp) + "\r\n"))
    }

    private queueReply(bytes: Buffer) {
        this.replies.push({ at: this.clock.now() + this.replyDelayMs, bytes })
    }

    private releaseReplies() {
        const now = this.clock.now()
        while (this.replies.length > 0 && this.replies[0].at <= now) {
            const r = this.replies.shift()
            const rest = this.out.length - this.outPos
            const b = Buffer.alloc(rest + r.bytes.length)
            b.blitAt(0, this.out, this.outPos, rest)
            b.blitAt(rest, r.bytes, 0, r.bytes.length)
            this.out = b
            this.outPos = 0
        }
    }

    // ---- requests -------------------------------------------------------------------------------

    private async handle(name: string, req: any): Promise<any> {
        if (name === "hub.set") return this.hubSet(req)
        if (name === "note.add") return await this.noteAdd(req)
        if (name === "hub.sync") {
            this.requestSync(true, this.clock.now())
            return {}
        }
        if (name === "hub.sync.status") return this.syncStatus()
        if (name === "card.time") {
            const utc = this.utcMs()
            if (isNaN(utc)) return { err: "time is not yet set {no-time}" }
            return { time: Math.floor(utc / 1000), zone: "UTC,Unknown", minutes: 0 }
        }
        if (name === "card.status") {
            return {
                status: "{normal}",
                connected: this.connected,
                storage: Math.ceil((100 * this.usedBytes) / this.capacityBytes),
                cell: this.connected,
            }
        }
        if (name === "card.wireless") {
            if (!this.connected) return { status: "{cell-registration-wait}", count: 0 }
            return { status: "{cell-registered}", count: 3, net: { rat: "lte", bars: 3 } }
        }
        return { err: "unknown request" }
    }

    private hubSet(req: any): any {
        if (req.product !== undefined) {
            if (typeof req.product !== "string") return { err: "hub.set: product must be a string" }
            this.product = req.product
        }
        if (req.sn !== undefined) this.sn = "" + req.sn
        if (req.mode !== undefined) {
            if (MODES.indexOf(req.mode) < 0) return { err: "hub.set: unknown mode " + req.mode }
            this.mode = req.mode
        }
        if (req.outbound !== undefined) {
            if (typeof req.outbound !== "number") return { err: "hub.set: outbound must be minutes" }
            this.outbound = req.outbound
        }
        if (req.inbound !== undefined && typeof req.inbound === "number") this.inbound = req.inbound
        return {}
    }

    private async noteAdd(req: any): Promise<any> {
        const file = req.file === undefined ? "data.qo" : req.file
        if (typeof file !== "string" || !(file.endsWith(".qo") || file.endsWith(".qos")))
            return { err: "note.add: only outbound queues (*.qo, *.qos) are modelled" }
        const body = req.body
        if (body !== undefined && (body === null || typeof body !== "object" || Array.isArray(body)))
            return { err: "note.add: body must be a JSON object" }
        const payload = req.payload === undefined ? "" : req.payload
        if (typeof payload !== "string" || !(await looksBase64(payload)))
            return { err: "note.add: payload must be base64 {io}" }
        const size = payload.length + (body === undefined ? 0 : JSON.stringify(body).length)
        if (this.usedBytes + size > this.capacityBytes) return { err: "note.add: insufficient storage {storage}" }
        const utc = this.utcMs()
        if (this.queued.length === 0) this.queuedSince = this.clock.now()
        this.queued.push({ file, body, payload, time: isNaN(utc) ? 0 : Math.floor(utc / 1000) })
        this.usedBytes += size
        if (req.sync === true) this.requestSync(true, this.clock.now())
        let total = 0
        for (const n of this.queued) if (n.file === file) total++
        return { total }
    }

    private syncStatus(): any {
        this.tick()
        const now = this.clock.now()
        const r: any = {}
        if (!this.product) {
            r.status = "no ProductUID set {product-noexist}"
        } else if (this.syncPending) {
            r.status = this.connected ? "sync in progress {sync}" : "idle {disconnected} {transport}"
        } else if (this.lastCompletedAt >= 0) {
            r.status = "completed {sync-end}"
        } else {
            r.status = "idle"
        }
        r.mode = this.connected ? "{modem-on}" : "{modem-off}"
        if (this.syncRequestedAt >= 0) r.requested = Math.floor((now - this.syncRequestedAt) / 1000)
        if (this.lastCompletedAt >= 0) {
            r.completed = Math.floor((now - this.lastCompletedAt) / 1000)
            const utc = this.utcMs()
            if (!isNaN(utc)) r.time = Math.floor((utc - (now - this.lastCompletedAt)) / 1000)
        }
        if (this.queued.length > 0 || this.syncPending) r.sync = true
        return r
    }

    /** a sync wanted since device time `at` (explicit: hub.sync or sync:true, at = now) */
    private requestSync(explicit: boolean, at: number) {
        if (explicit) this.syncRequestedAt = at
        if (!this.syncPending) {
            this.syncPending = true
            this.syncWantedAt = at
        }
    }

    /** lazily advances the card's own activity (automatic syncs, sync completion) to now */
    private tick() {
        const now = this.clock.now()
        // automatic syncs, dated when the card would have started them (the model is evaluated lazily)
        if (!this.syncPending && this.queued.length > 0 && this.product) {
            if (this.mode === "continuous") {
                this.requestSync(false, this.queuedSince)
            } else if (this.mode === "periodic") {
                const due = Math.max(this.lastSyncAt + this.outbound * 60000, this.queuedSince)
                if (now >= due) this.requestSync(false, due)
            }
        }
        if (this.syncPending && this.connected && this.product) {
            const start = Math.max(this.syncWantedAt, this.connectedSince)
            if (now >= start + this.syncMs) {
                for (const n of this.queued) this.handed.push(n)
                this.queued = []
                this.usedBytes = 0
                this.syncPending = false
                this.lastSyncAt = now
                this.lastCompletedAt = now
                this.syncs++
            }
        }
    }
}
