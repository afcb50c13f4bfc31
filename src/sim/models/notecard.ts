import type { I2cChip } from "./bus.js"

/*
 * Register-level Blues Notecard model (serial-over-I2C at 0x17), on the host behind the bus bridge
 * (docs/simulator.md): the real driver (devs/uplink/notecard.ts) and the cellular uplink run against
 * it in the simulator and in their unit tests. Written from the hardware notes and the Notecard API,
 * independently of the driver. Its time is the world's: each transaction comes with its instant.
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
 * - faults: "nack" (every xfer is refused), "bus_ff" (reads 0xFF, writes lost: no card on the bus),
 *   "hang" (accepts writes, never has anything to read).
 *
 * Requests modelled: hub.set, note.add, note.get (inbound queues), file.delete, hub.sync,
 * hub.sync.status, card.time, card.status, card.wireless; anything else gets {"err":"unknown request"},
 * a line that is not a JSON object gets an err reply. `cmd` requests are executed without a reply, as
 * on the card. `failNext(req, err)` makes the next request of that name answer with that `err`.
 *
 * Sync behaviour (as on the card): note.add only queues the note on the card. A sync is requested by
 * hub.sync, note.add with sync:true, continuous mode (notes pending), or periodic mode every
 * `outbound` minutes. A sync needs a ProductUID (hub.set) and the network (`connected` input); while
 * disconnected it stays pending and the notes stay queued. `syncMs` after it could start, the sync
 * runs: the queued notes go up and the inbound notes waiting in "Notehub" come down.
 * - Without a `cloud` (unit tests): outbound notes are handed over to `takeOutbound()`, and the
 *   inbound notes given to `addInbound(n, true)` since the last sync land on the card.
 * - With a `cloud` (the simulator: the Notehub stand-in, src/uplink/notehub.ts): the sync is one
 *   `exchange()` with it, run inside the transaction during which it is due (the card only
 *   advances while the firmware talks to it; the VM's clock stands still meanwhile). An exchange
 *   that fails puts the notes back at the head of the queue and reports the error in
 *   hub.sync.status (`alert`, `err`).
 * Inbound notes (`*.qi`) are read with note.get (oldest first; `delete:true` removes it) and answered
 * {"err":"... {note-noexist}"} when the queue is empty.
 * Not modelled: templates, .db files, penalty boxes, the real card's MBs of storage (the queue holds
 * `capacityBytes`).
 */
export const NOTECARD_ADDR = 0x17
export type NotecardFault = "none" | "nack" | "bus_ff" | "hang"

export interface NotecardInputs {
    /** network (and Notehub) reachable */
    connected?: boolean
    /** UTC ms from the network at this instant; NaN: no network time */
    utcMs?: number
    fault?: NotecardFault
}

export interface Note {
    file: string
    /** the note's JSON body, undefined if none */
    body: unknown
    /** base64 payload as the host sent it, "" if none */
    payload: string
    /** UTC seconds when the card queued it, 0 if the card had no time */
    time: number
}

/** A note on its way to the card (an inbound `*.qi` note), as Notehub delivers it. */
export interface InboundNote {
    file: string
    /** the note's JSON body, undefined if none */
    body?: unknown
    /** base64 payload, "" or undefined if none */
    payload?: string
}

/** Where a sync goes: the simulated Notehub. Throws when the sync fails (no route, hub down). */
export interface NotecardCloud {
    /** hands the card's outbound notes over and returns the inbound notes waiting for it */
    exchange(sn: string, notes: Note[]): Promise<InboundNote[]>
}

export interface NotecardModelOptions {
    /** ms from the end of a request line to its reply being readable, default 20 */
    replyDelayMs?: number
    /** ms a sync takes once it can start, default 3000 */
    syncMs?: number
    /** bytes of queued notes (payload + body JSON) the card holds, default 24000 */
    capacityBytes?: number
    /** request lines kept in `lines` (oldest dropped), default 256 */
    keepLines?: number
}

const CHUNK_MAX = 253
const AVAIL_MAX = 253
/** the card's receive buffer: bytes it can take without a segment pause (generous: note-c sends up to ~500) */
export const SEGMENT_OVERRUN = 512
export const SEGMENT_PAUSE_MS = 250
/** longest request line accepted */
export const MAX_LINE = 8192
const MODES = ["periodic", "continuous", "minimum", "off"]
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** bytes a note takes in the card's queue: its payload text and body JSON */
function noteSize(n: { payload: string; body: unknown }): number {
    return n.payload.length + (n.body === undefined ? 0 : JSON.stringify(n.body).length)
}

/** JSON text -> an object, or undefined (not JSON, or not an object) */
function parseObject(text: string): Record<string, any> | undefined {
    let v: unknown
    try {
        v = JSON.parse(text)
    } catch {
        return undefined
    }
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, any>) : undefined
}

interface PendingReply {
    at: number
    bytes: Buffer
}

export class NotecardChip implements I2cChip {
    // ---- inputs and knobs
    connected = false
    fault: NotecardFault = "none"
    readonly replyDelayMs: number
    readonly syncMs: number
    readonly capacityBytes: number
    readonly keepLines: number

    // ---- hub.set configuration, as the card holds it (in its flash: it outlives the logger's VM)
    product: string | undefined
    sn: string | undefined
    mode = "periodic"
    outbound = 60
    inbound = 60

    // ---- observation
    /** every request line the card received, as text (without the newline), most recent last */
    readonly lines: string[] = []
    /** protocol rules the host broke (the last 64) */
    readonly violations: string[] = []
    /** xfers answered (including refused ones) */
    xfers = 0
    /** completed syncs */
    syncs = 0
    /** notes queued on the card, not yet synced */
    queued: Note[] = []
    /** inbound notes on the card (read with note.get) */
    inboundNotes: InboundNote[] = []
    /** the simulated Notehub a sync talks to; undefined: takeOutbound() / addInbound() (unit tests) */
    cloud: NotecardCloud | undefined
    /** the last sync's error ("" when it succeeded), as hub.sync.status reports it */
    syncErr = ""

    /** world UTC (ms) of the current transaction or input */
    private now: number
    private utcBase = NaN // utcMs input ...
    private utcSetAt = 0 // ... and when it was given
    private rx: number[] = [] // request line being received
    private rxOverflow = false
    private out = Buffer.alloc(0) // reply bytes readable now
    private replies: PendingReply[] = [] // replies not yet readable
    private askN = -1 // a `[0][n]` write waiting for its read-only xfer
    private segBytes = 0
    private lastWriteAt = -Infinity
    private usedBytes = 0
    private handed: Note[] = [] // synced to Notehub, waiting for takeOutbound()
    private syncPending = false
    private syncRequestedAt = -1 // explicit requests (hub.sync, sync:true), for `requested`
    private syncWantedAt = 0 // when the pending sync was requested (any cause)
    private connectedSince = 0
    private lastSyncAt: number // completion (or power-on), for the periodic timer
    private lastCompletedAt = -1
    private queuedSince = 0 // when the oldest queued note was added
    private hubInbound: InboundNote[] = [] // waiting in "Notehub" for the next sync (no cloud)
    private exchangeDue = false // a sync with the cloud is due: run by the next xfer
    private failing: { req: string; err: string }[] = []

    /** a card powered at world `utc` */
    constructor(utc: number, options: NotecardModelOptions = {}) {
        this.now = utc
        this.lastSyncAt = utc
        this.replyDelayMs = options.replyDelayMs ?? 20
        this.syncMs = options.syncMs ?? 3000
        this.capacityBytes = options.capacityBytes ?? 24000
        this.keepLines = options.keepLines ?? 256
    }

    /**
     * Power back at `utc` after a cut: what was in the card's RAM (a request line being received,
     * replies not yet read) is gone; its notes, inbound queue and configuration are in its flash.
     */
    powerOn(utc: number) {
        this.at(utc)
        this.rx = []
        this.rxOverflow = false
        this.out = Buffer.alloc(0)
        this.replies = []
        this.askN = -1
        this.segBytes = 0
    }

    /** the world's inputs at `utc` */
    setInputs(inputs: NotecardInputs, utc: number) {
        this.at(utc)
        if (inputs.connected !== undefined && inputs.connected !== this.connected) {
            this.tick() // a sync that finished before the change still counts
            this.connected = inputs.connected
            if (this.connected) this.connectedSince = this.now
        }
        if (inputs.utcMs !== undefined) {
            this.utcBase = inputs.utcMs
            this.utcSetAt = this.now
        }
        if (inputs.fault !== undefined) this.fault = inputs.fault
    }

    /** the card's UTC ms, NaN without network time */
    utcMs(): number {
        if (!(this.utcBase > 0)) return NaN
        return this.utcBase + (this.now - this.utcSetAt)
    }

    /** notes handed over to Notehub by `utc`, in order, since the last call (no cloud) */
    takeOutbound(utc: number): Note[] {
        this.at(utc)
        this.tick()
        const r = this.handed
        this.handed = []
        return r
    }

    /**
     * An inbound note from "Notehub": with `viaSync` it lands on the card at the next completed sync
     * (as on the real card), else at once.
     */
    addInbound(note: InboundNote, viaSync = true) {
        if (viaSync) this.hubInbound.push(note)
        else this.inboundNotes.push(note)
    }

    /** the next request named `req` is answered {"err": err} (e.g. a modem error) */
    failNext(req: string, err: string) {
        this.failing.push({ req, err })
    }

    /** a sync is waiting to start or to finish at `utc` */
    syncRequested(utc: number): boolean {
        this.at(utc)
        this.tick()
        return this.syncPending
    }

    // ---- I2C ------------------------------------------------------------------------------------

    /** time only moves forward (a transaction's instant is never before the last one's) */
    private at(utc: number) {
        if (utc > this.now) this.now = utc
    }

    async xfer(tx: Buffer, rxLen: number, utc: number): Promise<Buffer | undefined> {
        this.xfers++
        this.at(utc)
        if (this.fault === "nack") return undefined
        const rx = Buffer.alloc(rxLen)
        if (this.fault === "bus_ff") return rx.fill(0xff)
        this.tick()
        if (this.exchangeDue) await this.runExchange()
        if (tx.length > 0) {
            if (tx[0] === 0) {
                if (tx.length !== 2) this.violation(`read request of ${tx.length} bytes`)
                const n = tx.length > 1 ? tx[1] : 0
                if (rxLen > 0) this.answer(n, rx)
                else this.askN = n
                return rx
            }
            this.receiveChunk(tx)
            if (rxLen > 0) this.violation("read after a data chunk")
            return rx
        }
        if (rxLen > 0) {
            if (this.askN < 0) {
                this.violation("read without a [0x00][n] request")
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
        const avail = this.out.length
        let k = Math.min(n, avail, AVAIL_MAX)
        if (rx.length < 2) return
        if (k > rx.length - 2) k = rx.length - 2
        this.out.copy(rx, 2, 0, k)
        this.out = this.out.subarray(k)
        rx[0] = Math.min(avail - k, AVAIL_MAX)
        rx[1] = k
    }

    private receiveChunk(tx: Buffer) {
        const len = tx[0]
        if (len > CHUNK_MAX) this.violation(`chunk of ${len} bytes (max 253)`)
        if (tx.length !== len + 1) this.violation(`chunk header says ${len}, carries ${tx.length - 1}`)
        if (this.now - this.lastWriteAt >= SEGMENT_PAUSE_MS) this.segBytes = 0
        this.lastWriteAt = this.now
        this.segBytes += tx.length - 1
        if (this.segBytes > SEGMENT_OVERRUN) {
            this.violation(`segment overrun: ${this.segBytes} bytes without a 250 ms pause`)
            this.segBytes = 0
        }
        if (this.fault === "hang") return
        for (const c of tx.subarray(1)) {
            if (c === 0x0a) this.endLine()
            else if (this.rx.length >= MAX_LINE) this.rxOverflow = true
            else this.rx.push(c)
        }
    }

    private endLine() {
        const bytes = Buffer.from(this.rx)
        const overflow = this.rxOverflow
        this.rx = []
        this.rxOverflow = false
        const text = bytes.subarray(0, bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? -1 : undefined).toString("utf8")
        if (overflow) {
            this.violation(`request line over ${MAX_LINE} bytes`)
            this.keepLine(text.slice(0, 64))
            this.reply({ err: "request too large {io}" })
            return
        }
        this.keepLine(text)
        if (text.trim().length === 0) {
            this.queueReply(Buffer.from("\r\n"))
            return
        }
        const req = parseObject(text)
        if (!req) {
            this.reply({ err: "malformed request: not a JSON object {io}" })
            return
        }
        const isCmd = typeof req.cmd === "string" && typeof req.req !== "string"
        const name = isCmd ? req.cmd : req.req
        const rsp = typeof name === "string" ? this.handle(name, req) : { err: "no request {io}" }
        if (!isCmd) this.reply(rsp)
    }

    private violation(what: string) {
        if (this.violations.length >= 64) this.violations.shift()
        this.violations.push(what)
    }

    private keepLine(text: string) {
        if (this.lines.length >= this.keepLines) this.lines.splice(0, this.lines.length - this.keepLines + 1)
        this.lines.push(text)
    }

    private reply(rsp: unknown) {
        this.queueReply(Buffer.from(JSON.stringify(rsp) + "\r\n"))
    }

    private queueReply(bytes: Buffer) {
        this.replies.push({ at: this.now + this.replyDelayMs, bytes })
    }

    private releaseReplies() {
        while (this.replies.length > 0 && this.replies[0].at <= this.now) this.out = Buffer.concat([this.out, this.replies.shift()!.bytes])
    }

    // ---- requests -------------------------------------------------------------------------------

    private handle(name: string, req: Record<string, any>): Record<string, unknown> {
        const f = this.failing.findIndex(x => x.req === name)
        if (f >= 0) return { err: this.failing.splice(f, 1)[0].err }
        switch (name) {
            case "hub.set":
                return this.hubSet(req)
            case "note.add":
                return this.noteAdd(req)
            case "note.get":
                return this.noteGet(req)
            case "file.delete":
                return this.fileDelete(req)
            case "hub.sync":
                this.requestSync(true, this.now)
                return {}
            case "hub.sync.status":
                return this.syncStatus()
            case "card.time": {
                const utc = this.utcMs()
                if (isNaN(utc)) return { err: "time is not yet set {no-time}" }
                return { time: Math.floor(utc / 1000), zone: "UTC,Unknown", minutes: 0 }
            }
            case "card.status":
                return {
                    status: "{normal}",
                    connected: this.connected,
                    storage: Math.ceil((100 * this.usedBytes) / this.capacityBytes),
                    cell: this.connected,
                }
            case "card.wireless":
                if (!this.connected) return { status: "{cell-registration-wait}", count: 0 }
                return { status: "{cell-registered}", count: 3, net: { rat: "lte", bars: 3 } }
        }
        return { err: "unknown request" }
    }

    private hubSet(req: Record<string, any>): Record<string, unknown> {
        if (req.product !== undefined) {
            if (typeof req.product !== "string") return { err: "hub.set: product must be a string" }
            this.product = req.product
        }
        if (req.sn !== undefined) this.sn = String(req.sn)
        if (req.mode !== undefined) {
            if (!MODES.includes(req.mode)) return { err: `hub.set: unknown mode ${req.mode}` }
            this.mode = req.mode
        }
        if (req.outbound !== undefined) {
            if (typeof req.outbound !== "number") return { err: "hub.set: outbound must be minutes" }
            this.outbound = req.outbound
        }
        if (typeof req.inbound === "number") this.inbound = req.inbound
        return {}
    }

    private noteAdd(req: Record<string, any>): Record<string, unknown> {
        const file = req.file ?? "data.qo"
        if (typeof file !== "string" || !(file.endsWith(".qo") || file.endsWith(".qos")))
            return { err: "note.add: only outbound queues (*.qo, *.qos) are modelled" }
        const body = req.body
        if (body !== undefined && (body === null || typeof body !== "object" || Array.isArray(body)))
            return { err: "note.add: body must be a JSON object" }
        const payload = req.payload ?? ""
        if (typeof payload !== "string" || !BASE64.test(payload)) return { err: "note.add: payload must be base64 {io}" }
        const size = noteSize({ body, payload })
        if (this.usedBytes + size > this.capacityBytes) return { err: "note.add: insufficient storage {storage}" }
        const utc = this.utcMs()
        if (this.queued.length === 0) this.queuedSince = this.now
        this.queued.push({ file, body, payload, time: isNaN(utc) ? 0 : Math.floor(utc / 1000) })
        this.usedBytes += size
        if (req.sync === true) this.requestSync(true, this.now)
        return { total: this.queued.filter(n => n.file === file).length }
    }

    private noteGet(req: Record<string, any>): Record<string, unknown> {
        const file = req.file
        if (typeof file !== "string" || !(file.endsWith(".qi") || file.endsWith(".qis")))
            return { err: "note.get: only inbound queues (*.qi, *.qis) are modelled" }
        const i = this.inboundNotes.findIndex(n => n.file === file)
        if (i < 0) return { err: `no notes available in queue ${file} {note-noexist}` }
        const n = this.inboundNotes[i]
        if (req.delete === true) this.inboundNotes.splice(i, 1)
        const r: Record<string, unknown> = {}
        if (n.body !== undefined) r.body = n.body
        if (n.payload) r.payload = n.payload
        const utc = this.utcMs()
        if (!isNaN(utc)) r.time = Math.floor(utc / 1000)
        return r
    }

    /** file.delete {files: [...]}: drops those notefiles, queued outbound and inbound notes alike */
    private fileDelete(req: Record<string, any>): Record<string, unknown> {
        const files = req.files
        if (!Array.isArray(files)) return { err: "file.delete: files must be a list {io}" }
        this.queued = this.queued.filter(n => !files.includes(n.file))
        this.usedBytes = this.queued.reduce((a, n) => a + noteSize(n), 0)
        this.inboundNotes = this.inboundNotes.filter(n => !files.includes(n.file))
        return {}
    }

    private syncStatus(): Record<string, unknown> {
        this.tick()
        const now = this.now
        const r: Record<string, unknown> = {}
        if (!this.product) r.status = "no ProductUID set {product-noexist}"
        else if (this.syncPending) r.status = this.connected ? "sync in progress {sync}" : "idle {disconnected} {transport}"
        else if (this.lastCompletedAt >= 0) r.status = "completed {sync-end}"
        else r.status = "idle"
        r.mode = this.connected ? "{modem-on}" : "{modem-off}"
        if (this.syncRequestedAt >= 0) r.requested = Math.floor((now - this.syncRequestedAt) / 1000)
        if (this.lastCompletedAt >= 0) {
            r.completed = Math.floor((now - this.lastCompletedAt) / 1000)
            const utc = this.utcMs()
            if (!isNaN(utc)) r.time = Math.floor((utc - (now - this.lastCompletedAt)) / 1000)
        }
        if (this.queued.length > 0 || this.syncPending) r.sync = true
        if (this.syncErr) {
            r.alert = true
            r.err = this.syncErr
        }
        return r
    }

    /** a sync wanted since `at` (explicit: hub.sync or sync:true, at = now) */
    private requestSync(explicit: boolean, at: number) {
        if (explicit) this.syncRequestedAt = at
        if (!this.syncPending) {
            this.syncPending = true
            this.syncWantedAt = at
        }
    }

    /** lazily advances the card's own activity (automatic syncs, sync completion) to now */
    private tick() {
        const now = this.now
        // automatic syncs, dated when the card would have started them (the model is evaluated lazily)
        if (!this.syncPending && this.queued.length > 0 && this.product) {
            if (this.mode === "continuous") this.requestSync(false, this.queuedSince)
            else if (this.mode === "periodic") {
                const due = Math.max(this.lastSyncAt + this.outbound * 60000, this.queuedSince)
                if (now >= due) this.requestSync(false, due)
            }
        }
        if (this.syncPending && this.connected && this.product && !this.exchangeDue) {
            const start = Math.max(this.syncWantedAt, this.connectedSince)
            if (now < start + this.syncMs) return
            if (this.cloud) {
                this.exchangeDue = true // the network part runs in the next xfer (runExchange)
                return
            }
            this.handed.push(...this.queued)
            this.queued = []
            this.usedBytes = 0
            this.syncDone()
        }
    }

    private syncDone() {
        this.inboundNotes.push(...this.hubInbound)
        this.hubInbound = []
        this.syncPending = false
        this.syncErr = ""
        this.lastSyncAt = this.now
        this.lastCompletedAt = this.now
        this.syncs++
    }

    /** the due sync with the cloud: outbound notes up, inbound notes down (awaited inside an xfer) */
    private async runExchange() {
        const notes = this.queued
        this.queued = []
        this.usedBytes = 0
        try {
            this.inboundNotes.push(...(await this.cloud!.exchange(this.sn ?? "", notes)))
            this.syncDone()
        } catch (e) {
            // the sync failed: its notes go back to the head of the queue, the error shows in
            // hub.sync.status; the next explicit request or the periodic timer tries again
            this.queued = [...notes, ...this.queued]
            this.usedBytes = this.queued.reduce((a, n) => a + noteSize(n), 0)
            if (this.queued.length > 0) this.queuedSince = this.now
            this.syncErr = `sync failed: ${(e as Error).message} {network}`
            this.syncPending = false
            this.lastSyncAt = this.now
        } finally {
            this.exchangeDue = false
        }
    }
}
