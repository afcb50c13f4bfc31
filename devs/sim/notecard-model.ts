import * as ds from "@devicescript/core"
import { I2cBus } from "../hal/i2c"
import { Clock } from "../hal/clock"
import { postBatch } from "../uplink/http"
import { kvGet } from "../flash/kv"
import { hex8 } from "../hal/hex"
import { base64Decode } from "../uplink/notecard"

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
 * - With a `cloud` (the simulator: SimHubCloud, a host HTTP service): the sync is one `exchange()`
 *   with it, outbound notes up, inbound notes back. The network I/O runs inside the I2C transaction
 *   during which the card's sync is due (`xfer` awaits it before handling the bytes), never in a
 *   background fiber: the card only advances while the firmware talks to it, and the firmware talks
 *   to it only from CellularUplink.send, which runs only after the Wi-Fi uplink has failed and closed
 *   its socket. So the VM's one socket is never contended. An exchange that fails puts the notes back
 *   at the head of the queue and reports the error in hub.sync.status (`alert`, `err`).
 * Inbound notes (`*.qi`) are read with note.get (oldest first; `delete:true` removes it) and answered
 * {"err":"... {note-noexist}"} when the queue is empty.
 * Not modelled: templates, .db files, penalty boxes, the real card's MBs of storage (the queue holds
 * `capacityBytes`, small by default because the simulator VM heap is ~64 KB).
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

/** A note on its way to the card (an inbound `*.qi` note), as Notehub delivers it. */
export interface InboundNote {
    file: string
    /** the note's JSON body, undefined if none */
    body?: any
    /** base64 payload, "" or undefined if none */
    payload?: string
}

/** Where a sync goes: the simulated Notehub. Throws when the sync fails (no route, hub down). */
export interface NotecardCloud {
    /** hands the card's outbound notes over and returns the inbound notes waiting for it */
    exchange(sn: string, notes: Note[]): Promise<InboundNote[]>
}

/**
 * The simulator's Notehub: a host HTTP service (src/uplink/notehub.ts) whose sync URL the harness
 * writes into the setting `simhub` at provisioning (simulator only). One sync is one POST
 * `{"sn": ..., "notes": [{file, body, payload}]}` answered by `{"inbound": [{file, body, payload}]}`,
 * over the VM's real socket (postBatch: a deadline on every step; the runtime's fetch has none).
 */
export class SimHubCloud implements NotecardCloud {
    /** the sync URL; read from the `simhub` setting on first use when not set */
    url: string = undefined
    /** wall ms for the whole HTTP exchange */
    timeoutMs = 10000

    async exchange(sn: string, notes: Note[]): Promise<InboundNote[]> {
        if (!this.url) {
            const b = await kvGet("simhub")
            if (!b) throw new Error("simhub: no `simhub` setting (the Notehub stand-in URL)")
            this.url = b.toString()
        }
        const r = await postBatch(this.url, syncRequestBody(sn, notes), this.timeoutMs)
        if (r.status !== 200) throw new Error("simhub: HTTP " + r.status)
        let j: any
        try {
            j = JSON.parse(r.body.toString())
        } catch (e: any) {
            j = undefined
        }
        if (!j || !Array.isArray(j.inbound)) throw new Error("simhub: reply without `inbound`")
        const got: InboundNote[] = []
        for (const n of j.inbound) {
            if (!n || typeof n.file !== "string") continue
            got.push({ file: n.file, body: n.body, payload: typeof n.payload === "string" ? n.payload : "" })
        }
        return got
    }
}

/** `{"sn": sn, "notes": [{"file", "body", "payload"}]}` as bytes (a sync carries one batch's note: small) */
export function syncRequestBody(sn: string, notes: Note[]): Buffer {
    const list = notes.map(n => ({ file: n.file, body: n.body ?? null, payload: n.payload }))
    return Buffer.from(JSON.stringify({ sn, notes: list }))
}

export interface NotecardModelOptions {
    /** device ms from the end of a request line to its reply being readable, default 20 */
    replyDelayMs?: number
    /** device ms a sync takes once it can start, default 3000 */
    syncMs?: number
    /** bytes of queued notes (payload + body JSON) the card holds, default 24000 */
    capacityBytes?: number
    /** request lines kept in `lines` (oldest dropped), default 256; keep it small in the simulator */
    keepLines?: number
    /** longer lines are kept cut to this many characters, default 2048 */
    keepLineChars?: number
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

/** base64 text the card takes: the driver's strict decoder accepts it */
async function isBase64(s: string): Promise<boolean> {
    try {
        await base64Decode(s)
        return true
    } catch (e) {
        return false
    }
}

/** bytes a note takes in the card's queue: its payload text and body JSON */
function noteSize(n: Note): number {
    return n.payload.length + (n.body === undefined ? 0 : JSON.stringify(n.body).length)
}

/** JSON text -> an object, or undefined (not JSON, or not an object) */
function parseObject(text: string): any {
    let v: any
    try {
        v = JSON.parse(text)
    } catch (e: any) {
        return undefined
    }
    return v && typeof v === "object" && !Array.isArray(v) ? v : undefined
}

const PAYLOAD_KEY = Buffer.from('"payload":"')

/**
 * A request line's (bytes 0..n of `line`) `"payload":"..."` value cut out: the payload text, the
 * line with `""` in its place, and where it was (`at`). Undefined when there is no such key or the
 * value has an escape (then it is no base64 and the whole line goes through JSON.parse). A key of
 * that name inside `body` is caught by the caller (the top-level payload of the rest must then be
 * ""). Yields now and then.
 */
async function cutPayload(line: Buffer, n: number): Promise<{ payload: string; rest: Buffer; at: number }> {
    const k = PAYLOAD_KEY.length
    let a = -1
    let i = line.indexOf(0x22, 0, n)
    let steps = 0
    while (i >= 0 && i + k <= n && a < 0) {
        if ((++steps & 255) === 0) await ds.sleep(0)
        let j = 1
        while (j < k && line[i + j] === PAYLOAD_KEY[j]) j++
        if (j === k) a = i + k
        else i = line.indexOf(0x22, i + 1, n)
    }
    if (a < 0) return undefined
    const b = line.indexOf(0x22, a, n)
    if (b < 0) return undefined
    const esc = line.indexOf(0x5c, a, b)
    if (esc >= 0) return undefined
    const rest = Buffer.alloc(n - (b - a))
    rest.blitAt(0, line, 0, a)
    rest.blitAt(a, line, b, n - b)
    // (Buffer.setLength, which would let the string be made without the slice, is not in the runtime)
    return { payload: line.slice(a, b).toString(), rest, at: a }
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
    keepLines: number
    keepLineChars: number

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
    /** inbound notes on the card (read with note.get) */
    inboundNotes: InboundNote[] = []
    /** the simulated Notehub a sync talks to; undefined: takeOutbound() / addInbound() (unit tests) */
    cloud: NotecardCloud = undefined
    /** the last sync's error ("" when it succeeded), as hub.sync.status reports it */
    syncErr = ""

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
    private hubInbound: InboundNote[] = [] // waiting in "Notehub" for the next sync (no cloud)
    private exchangeDue = false // a sync with the cloud is due: run by the next xfer
    private exchanging = false
    private failReq: string[] = [] // failNext(): request names ...
    private failErr: string[] = [] // ... and their err texts

    constructor(
        readonly clock: Clock,
        options: NotecardModelOptions = {},
    ) {
        this.replyDelayMs = options.replyDelayMs ?? 20
        this.syncMs = options.syncMs ?? 3000
        this.capacityBytes = options.capacityBytes ?? 24000
        this.keepLines = options.keepLines ?? 256
        this.keepLineChars = options.keepLineChars ?? 2048
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
        this.failReq.push(req)
        this.failErr.push(err)
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
        if (this.exchangeDue) await this.runExchange()
        if (tx.length > 0) {
            if (tx[0] === 0) {
                if (tx.length !== 2) this.violation("read request of " + tx.length + " bytes")
                const n = tx.length > 1 ? tx[1] : 0
                if (rxLen > 0) this.answer(n, rx)
                else this.askN = n
                return rx
            }
            await this.receiveChunk(tx)
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
        if (len > CHUNK_MAX) this.violation("chunk of " + len + " bytes (max 253)")
        if (tx.length !== len + 1) this.violation("chunk header says " + len + ", carries " + (tx.length - 1))
        const now = this.clock.now()
        if (now - this.lastWriteAt >= SEGMENT_PAUSE_MS) this.segBytes = 0
        this.lastWriteAt = now
        this.segBytes += tx.length - 1
        if (this.segBytes > SEGMENT_OVERRUN) {
            this.violation("segment overrun: " + this.segBytes + " bytes without a 250 ms pause")
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
                // grow by half (not double): the simulator VM's heap is small
                const bigger = Buffer.alloc(Math.min(this.rx.length + (this.rx.length >> 1), MAX_LINE))
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
        let line = this.rx // the line is bytes 0..end of it
        this.rxLen = 0
        this.rxOverflow = false
        // (a small buffer is reused: `line` is done with before anything can write to it again)
        if (this.rx.length > 256) this.rx = Buffer.alloc(64)
        if (overflow) {
            this.violation("request line over " + MAX_LINE + " bytes")
            this.keepLine(line.slice(0, 64).toString())
            this.reply({ err: "request too large {io}" })
            return
        }
        // Heap: the simulator VM has ~58 KB for the firmware, the driver's copies of a request and
        // this model's. A big line (a note.add with a payload) is parsed without its payload, which
        // is cut out of the bytes as its own string: one copy of it here instead of three.
        let req: any = undefined
        let parsed = false
        if (end > 1024) {
            let cut = await cutPayload(line, end)
            if (cut) {
                line = undefined
                const payload = cut.payload
                const rest = cut.rest.toString()
                req = parseObject(rest)
                if (req && req.payload === "") {
                    req.payload = payload
                    parsed = true
                    this.keepLine(rest + " (payload: " + payload.length + " chars)")
                } else {
                    // not what it looked like (a "payload" key inside `body`?): the whole line,
                    // put back together, is parsed below
                    req = undefined
                    const r = cut.rest
                    const p = Buffer.from(payload)
                    line = Buffer.alloc(r.length + p.length)
                    line.blitAt(0, r, 0, cut.at)
                    line.blitAt(cut.at, p, 0, p.length)
                    line.blitAt(cut.at + p.length, r, cut.at, r.length - cut.at)
                    end = line.length
                }
                cut = undefined
            }
        }
        if (!parsed) {
            const text = line.slice(0, end).toString()
            line = undefined
            this.keepLine(text)
            if (text.trim().length === 0) {
                this.queueReply(Buffer.from("\r\n"))
                return
            }
            req = parseObject(text)
        }
        if (!req) {
            this.reply({ err: "malformed request: not a JSON object {io}" })
            return
        }
        const isCmd = typeof req.cmd === "string" && typeof req.req !== "string"
        const name = isCmd ? req.cmd : req.req
        const rsp = typeof name === "string" ? await this.handle(name, req) : { err: "no request {io}" }
        if (!isCmd) this.reply(rsp)
    }

    /** a protocol rule the host broke (the last 64 are kept) */
    private violation(what: string) {
        if (this.violations.length >= 64) this.violations.insert(0, -1)
        this.violations.push(what)
    }

    /** `lines` keeps the last `keepLines` lines, each cut at `keepLineChars` characters */
    private keepLine(text: string) {
        const extra = this.lines.length - this.keepLines + 1
        if (extra > 0) this.lines.insert(0, -extra)
        this.lines.push(text.length > this.keepLineChars ? text.slice(0, this.keepLineChars) : text)
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
        const f = this.failReq.indexOf(name)
        if (f >= 0) {
            const err = this.failErr[f]
            this.failReq.insert(f, -1)
            this.failErr.insert(f, -1)
            return { err }
        }
        if (name === "hub.set") return this.hubSet(req)
        if (name === "note.add") return await this.noteAdd(req)
        if (name === "note.get") return this.noteGet(req)
        if (name === "file.delete") return this.fileDelete(req)
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
        const file = req.file ?? "data.qo"
        if (typeof file !== "string" || !(file.endsWith(".qo") || file.endsWith(".qos")))
            return { err: "note.add: only outbound queues (*.qo, *.qos) are modelled" }
        const body = req.body
        if (body !== undefined && (body === null || typeof body !== "object" || Array.isArray(body)))
            return { err: "note.add: body must be a JSON object" }
        const payload = req.payload ?? ""
        if (typeof payload !== "string" || !(await isBase64(payload))) return { err: "note.add: payload must be base64 {io}" }
        const size = noteSize({ file, body, payload, time: 0 })
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

    private noteGet(req: any): any {
        const file = req.file
        if (typeof file !== "string" || !(file.endsWith(".qi") || file.endsWith(".qis")))
            return { err: "note.get: only inbound queues (*.qi, *.qis) are modelled" }
        let i = 0
        while (i < this.inboundNotes.length && this.inboundNotes[i].file !== file) i++
        if (i === this.inboundNotes.length) return { err: "no notes available in queue " + file + " {note-noexist}" }
        const n = this.inboundNotes[i]
        if (req.delete === true) this.inboundNotes.insert(i, -1)
        const r: any = {}
        if (n.body !== undefined) r.body = n.body
        if (n.payload) r.payload = n.payload
        const utc = this.utcMs()
        if (!isNaN(utc)) r.time = Math.floor(utc / 1000)
        return r
    }

    /** file.delete {files: [...]}: drops those notefiles, queued outbound and inbound notes alike */
    private fileDelete(req: any): any {
        const files = req.files
        if (!Array.isArray(files)) return { err: "file.delete: files must be a list {io}" }
        const keep: Note[] = []
        let used = 0
        for (const n of this.queued) {
            if (files.indexOf(n.file) >= 0) continue
            keep.push(n)
            used += noteSize(n)
        }
        this.queued = keep
        this.usedBytes = used
        const keepIn: InboundNote[] = []
        for (const n of this.inboundNotes) if (files.indexOf(n.file) < 0) keepIn.push(n)
        this.inboundNotes = keepIn
        return {}
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
        if (this.syncErr) {
            r.alert = true
            r.err = this.syncErr
        }
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
        if (this.syncPending && this.connected && this.product && !this.exchangeDue) {
            const start = Math.max(this.syncWantedAt, this.connectedSince)
            if (now >= start + this.syncMs) {
                if (this.cloud) {
                    this.exchangeDue = true // the network part runs in the next xfer (runExchange)
                    return
                }
                for (const n of this.queued) this.handed.push(n)
                this.queued = []
                this.usedBytes = 0
                this.syncDone(now)
            }
        }
    }

    private syncDone(now: number) {
        for (const n of this.hubInbound) this.inboundNotes.push(n)
        this.hubInbound = []
        this.syncPending = false
        this.syncErr = ""
        this.lastSyncAt = now
        this.lastCompletedAt = now
        this.syncs++
    }

    /** the due sync with the cloud: outbound notes up, inbound notes down (awaited inside an xfer) */
    private async runExchange() {
        if (this.exchanging) return
        this.exchanging = true
        const notes = this.queued
        this.queued = []
        this.usedBytes = 0
        try {
            const got = await this.cloud.exchange(this.sn || "", notes)
            for (const n of got) this.inboundNotes.push(n)
            this.syncDone(this.clock.now())
        } catch (e: any) {
            // the sync failed: its notes go back to the head of the queue, the error shows in
            // hub.sync.status; the next explicit request or the periodic timer tries again
            const back: Note[] = []
            let used = 0
            for (const n of notes) back.push(n)
            for (const n of this.queued) back.push(n)
            for (const n of back) used += noteSize(n)
            this.queued = back
            this.usedBytes = used
            if (back.length > 0) this.queuedSince = this.clock.now()
            this.syncErr = "sync failed: " + (e && e.message ? e.message : "" + e) + " {network}"
            this.syncPending = false
            this.lastSyncAt = this.clock.now()
        } finally {
            this.exchangeDue = false
            this.exchanging = false
        }
    }
}
