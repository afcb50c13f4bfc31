import * as ds from "@devicescript/core"
import { I2cBus } from "../hal/i2c"
import { Clock } from "../hal/clock"
import { Peripheral } from "../hal/peripheral"

/*
 * Blues Notecard driver, serial-over-I2C at 0x17 (protocol: docs/parts.md).
 *
 * Requests are JSON lines. Writing: the line goes out in chunks `[len][len bytes]` (30 bytes by
 * default, at most 253), with a short delay after every chunk and a longer pause before a segment
 * would exceed ~250 bytes, so the card's receive buffer never overflows. Reading: `[0x00][0]` asks how
 * many reply bytes are waiting; `[0x00][n]` then returns `[available after this read][n][n bytes]`.
 * The host polls until a whole newline-terminated reply is in, with a timeout for the first byte and
 * a shorter one between bytes of a reply that has started (as note-c does).
 *
 * Robustness:
 * - one transaction at a time (internal lock, released on every path by try/finally);
 * - a transport failure (xfer throwing = NACK, a bus reading 0xFF, protocol garbage, timeout) sets
 *   `ok` false and marks the link for a resync: the next attempt first sends a bare "\n" (ending any
 *   partial request line the card holds) and drains stale output until the card echoes a blank line;
 * - after a failure the first retry is immediate, then the driver backs off 1 s, 2 s, 4 s ... 60 s of
 *   device time: requests in between fail at once with no bus traffic (`retryBegin()` never throws);
 * - an `err` in a reply is the card answering: it throws a NotecardError and leaves `ok` alone.
 *
 * Memory: the simulator VM has a ~64 KB heap. A request is sent from its JSON string without a
 * byte copy; keep batches to a few KB (a 2 KB batch is a ~2.8 KB request).
 */

export const NOTECARD_ADDR = 0x17
/** largest chunk the serial-over-I2C protocol allows, both directions */
export const CHUNK_MAX = 253
/** requests (JSON plus newline) must stay under this (hardware notes) */
export const MAX_REQUEST_BYTES = 8192
/** replies longer than this are treated as garbage */
export const MAX_REPLY_BYTES = 8192
/** card.time values outside [2024-01-01, 2100-01-01) UTC are not a network time */
export const MIN_VALID_UTC = 1704067200
export const MAX_VALID_UTC = 4102444800

const BACKOFF_MIN_MS = 1000
const BACKOFF_MAX_MS = 60000
const RESYNC_ATTEMPTS = 3
const NL = 0x0a

// ---- base64 (RFC 4648, standard alphabet, padded) -----------------------------------------------

const B64_ENC = Buffer.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
const B64_PAD = 0x3d // "="

function b64DecodeTable(): Buffer {
    const t = Buffer.alloc(256)
    t.fillAt(0, 256, 0xff)
    for (let i = 0; i < 64; i++) t[B64_ENC[i]] = i
    return t
}
const B64_DEC = b64DecodeTable()

/**
 * 3-byte groups per slice between yields. The VM panics (InfiniteLoop) when a fiber runs ~100k
 * instructions without yielding, which a plain loop over ~6 KB would; 512 groups are ~25k.
 */
const B64_SLICE = 512

/** bytes -> base64 text (with "=" padding). Async: yields every 1.5 KB. */
export async function base64Encode(data: Buffer): Promise<string> {
    const n = data.length
    const out = Buffer.alloc(Math.floor((n + 2) / 3) * 4)
    let o = 0
    let i = 0
    let groups = 0
    for (; i + 2 < n; i += 3) {
        const v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
        out[o] = B64_ENC[(v >> 18) & 63]
        out[o + 1] = B64_ENC[(v >> 12) & 63]
        out[o + 2] = B64_ENC[(v >> 6) & 63]
        out[o + 3] = B64_ENC[v & 63]
        o += 4
        if (++groups === B64_SLICE) {
            groups = 0
            await ds.sleep(0)
        }
    }
    const rest = n - i
    if (rest > 0) {
        const v = (data[i] << 16) | (rest > 1 ? data[i + 1] << 8 : 0)
        out[o] = B64_ENC[(v >> 18) & 63]
        out[o + 1] = B64_ENC[(v >> 12) & 63]
        out[o + 2] = rest > 1 ? B64_ENC[(v >> 6) & 63] : B64_PAD
        out[o + 3] = B64_PAD
    }
    return out.toString()
}

/**
 * base64 text -> bytes. Strict: length a multiple of 4, only the standard alphabet, "=" only as
 * final padding, unused trailing bits zero (so every byte string has exactly one accepted text).
 * Throws an Error saying what is wrong. Async: yields every 2 KB of text.
 */
export async function base64Decode(text: string): Promise<Buffer> {
    const src = Buffer.from(text)
    const len = src.length
    if (len % 4 !== 0) throw new Error("base64: length " + len + " is not a multiple of 4")
    let pad = 0
    if (len > 0 && src[len - 1] === B64_PAD) pad = src[len - 2] === B64_PAD ? 2 : 1
    const out = Buffer.alloc((len / 4) * 3 - pad)
    let o = 0
    let groups = 0
    for (let i = 0; i < len; i += 4) {
        const last = i + 4 === len
        const c0 = B64_DEC[src[i]]
        const c1 = B64_DEC[src[i + 1]]
        const c2 = last && pad === 2 ? 0 : B64_DEC[src[i + 2]]
        const c3 = last && pad >= 1 ? 0 : B64_DEC[src[i + 3]]
        if ((c0 | c1 | c2 | c3) & 0xc0) throw new Error("base64: bad character in " + i + ".." + (i + 3))
        const v = (c0 << 18) | (c1 << 12) | (c2 << 6) | c3
        out[o++] = (v >> 16) & 0xff
        if (last && pad === 2) {
            if (v & 0xffff) throw new Error("base64: non-zero bits in the padding")
            break
        }
        out[o++] = (v >> 8) & 0xff
        if (last && pad === 1) {
            if (v & 0xff) throw new Error("base64: non-zero bits in the padding")
            break
        }
        out[o++] = v & 0xff
        if (++groups === B64_SLICE) {
            groups = 0
            await ds.sleep(0)
        }
    }
    return out
}

// ---- errors and reply types ----------------------------------------------------------------------

/** The Notecard answered, with an `err` field: `err` is the card's text, e.g. "... {no-time}". */
export class NotecardError extends Error {
    constructor(
        readonly req: string,
        readonly err: string,
        readonly reply: any,
    ) {
        super("Notecard " + req + ": " + err)
        this.name = "NotecardError"
    }
    /** true when the card's error text carries this `{code}` (give it with braces) */
    hasCode(code: string): boolean {
        return this.err.indexOf(code) >= 0
    }
}

export interface HubSetOptions {
    /** Notehub ProductUID, e.g. "com.example.coldtrace:fleet" */
    product: string
    /** serial number label shown in Notehub (the device id) */
    sn?: string
    /** "periodic" (default on the card), "continuous", "minimum" or "off" */
    mode?: string
    /** periodic mode: minutes between outbound syncs */
    outbound?: number
    /** periodic mode: minutes between inbound checks */
    inbound?: number
}

export interface SyncStatus {
    /** the card's status text, e.g. "completed {sync-end}" */
    status: string
    /** the card's `sync` flag: true while notes wait to be synced (or a sync is needed for time) */
    sync: boolean
    /** seconds since the last explicit sync request, undefined if none */
    requested: number
    /** seconds since the last completed sync, undefined if none */
    completed: number
    /** UTC seconds of the last completed sync, undefined if unknown */
    time: number
    /** true if the most recent sync had an error */
    alert: boolean
    /** the most recent sync's error text (not a request error), undefined if none */
    syncErr: string
}

export interface CardStatus {
    status: string
    /** connected to Notehub */
    connected: boolean
    /** percent of the card's storage in use, undefined if not reported */
    storage: number
}

export interface CardWireless {
    status: string
    /** signal bars 0..5 (0 when not reported) */
    bars: number
}

export interface NotecardOptions {
    /** device clock for delays, polling, timeouts and back-off (default: real time) */
    clock?: Clock
    /** I2C address, default 0x17 */
    address?: number
    /** bytes per write chunk and per read request, 1..253, default 30 */
    chunkBytes?: number
    /** pause after every write chunk (device ms), default 20 */
    chunkDelayMs?: number
    /** a pause is inserted before a segment would exceed this many bytes, default 250 */
    segmentBytes?: number
    /** the pause between segments (device ms), default 250 */
    segmentDelayMs?: number
    /** wait between availability polls while no reply bytes are waiting (device ms), default 50 */
    pollMs?: number
    /** wait for the first reply byte (device ms), default 30000 */
    timeoutMs?: number
    /** once a reply has started, the longest gap between its bytes (device ms), default 1000 */
    intraTimeoutMs?: number
}

function int(v: any): number {
    return typeof v === "number" ? v : undefined
}

/**
 * A request object -> its JSON line text (without the newline). Throws if it is not an object with a
 * string `req` (or `cmd`), or if the line (plus newline) exceeds MAX_REQUEST_BYTES.
 */
export function encodeRequest(req: any): string {
    if (!req || typeof req !== "object" || Array.isArray(req)) throw new Error("Notecard request must be an object")
    if (typeof req.req !== "string" && typeof req.cmd !== "string") throw new Error("Notecard request needs a string `req` (or `cmd`)")
    const text = JSON.stringify(req)
    const n = text.byteLength + 1
    if (n > MAX_REQUEST_BYTES) throw new Error("Notecard request too large: " + n + " bytes, limit " + MAX_REQUEST_BYTES)
    return text
}

/**
 * Largest binary payload (bytes) a note.add of this file and body can carry under the 8 KB request
 * limit, with the payload sent base64-encoded.
 */
export function maxNotePayload(file: string, body: any, sync = false): number {
    const probe: any = { req: "note.add", file }
    if (body !== undefined) probe.body = body
    probe.payload = ""
    if (sync) probe.sync = true
    const room = MAX_REQUEST_BYTES - (JSON.stringify(probe).byteLength + 1)
    return room <= 0 ? 0 : Math.floor(room / 4) * 3
}

/** blank = nothing but CR/LF/spaces */
function isBlankLine(b: Buffer, from: number, to: number): boolean {
    for (let i = from; i < to; i++) {
        const c = b[i]
        if (c !== 0x0d && c !== 0x0a && c !== 0x20 && c !== 0x09) return false
    }
    return true
}

// ---- driver --------------------------------------------------------------------------------------

/**
 * Notecard on an I2C bus. `request()` is the one primitive; the helpers build requests on it.
 * Every method that talks to the card may throw: a NotecardError when the card replied with `err`,
 * an Error for a transport failure (then `ok` is false) or while backing off after one.
 * Note that a request whose reply was lost may still have been executed by the card (a note.add may
 * be queued twice): the receiving side must tolerate duplicates.
 */
export class Notecard extends Peripheral {
    // (Peripheral's `ok`: the last transaction or resync completed on the bus; `lastError`: the last
    // transport problem. The card keeps its own retry timing: the first retry is immediate.)
    /** completed transactions, transport failures (for status and tests) */
    transactions = 0
    failures = 0

    readonly address: number
    readonly chunkBytes: number
    readonly chunkDelayMs: number
    readonly segmentBytes: number
    readonly segmentDelayMs: number
    readonly pollMs: number
    readonly timeoutMs: number
    readonly intraTimeoutMs: number
    private needResync = true
    private retryAt = 0
    private backoffMs = 0

    constructor(
        readonly bus: I2cBus,
        options: NotecardOptions = {},
    ) {
        super(options.clock || new Clock())
        const o = options
        this.address = o.address ?? NOTECARD_ADDR
        this.chunkBytes = o.chunkBytes ?? 30
        if (!(this.chunkBytes >= 1 && this.chunkBytes <= CHUNK_MAX))
            throw new Error("Notecard: chunkBytes must be 1..253, not " + this.chunkBytes)
        this.chunkDelayMs = o.chunkDelayMs ?? 20
        this.segmentBytes = o.segmentBytes ?? 250
        this.segmentDelayMs = o.segmentDelayMs ?? 250
        this.pollMs = o.pollMs ?? 50
        this.timeoutMs = o.timeoutMs ?? 30000
        this.intraTimeoutMs = o.intraTimeoutMs ?? 1000
    }

    /** device ms until the next attempt is allowed after failures (0: now) */
    retryInMs(): number {
        if (this.ok) return 0
        const d = this.retryAt - this.clock.now()
        return d > 0 ? d : 0
    }

    private checkBackoff() {
        const wait = this.retryInMs()
        if (wait > 0) throw new Error("Notecard not answering (" + this.lastError + "); next try in " + wait + " ms")
    }

    private transportFailed(e: any) {
        this.ok = false
        this.needResync = true
        this.failures++
        this.lastError = e && e.message ? e.message : "" + e
        // first retry at once (a glitch), then 1 s, 2 s, 4 s ... 60 s
        this.retryAt = this.clock.now() + this.backoffMs
        this.backoffMs = this.backoffMs === 0 ? BACKOFF_MIN_MS : Math.min(this.backoffMs * 2, BACKOFF_MAX_MS)
    }

    private transportOk() {
        this.ok = true
        this.backoffMs = 0
        this.retryAt = 0
    }

    /**
     * Resynchronizes with the card (a bare "\n", drain until it echoes a blank line). Throws if the
     * card does not answer; `ok` tells the outcome. Respects the back-off.
     */
    async begin(): Promise<void> {
        await this.lock.acquire()
        try {
            this.checkBackoff()
            try {
                await this.resyncLocked()
            } catch (e: any) {
                this.transportFailed(e)
                throw e
            }
            this.transportOk()
        } finally {
            this.lock.release()
        }
    }

    /** begin() when not `ok` and the back-off allows; never throws; returns `ok` */
    async retryBegin(): Promise<boolean> {
        if (this.ok) return true
        if (this.retryInMs() > 0) return false
        try {
            await this.begin()
        } catch (e: any) {}
        return this.ok
    }

    /**
     * One transaction: sends `req` as a JSON line and returns the parsed reply, which may carry
     * `err` (see request() for the throwing variant). Throws on transport failures and non-JSON replies.
     * A `cmd` (instead of `req`) gets no reply from the card: it is only sent, and {} is returned.
     */
    async transaction(req: any): Promise<any> {
        const text = encodeRequest(req) // before the lock: a bad request never touches the bus
        const noReply = typeof req.req !== "string"
        await this.lock.acquire()
        let line = "{}"
        try {
            this.checkBackoff()
            try {
                if (this.needResync) await this.resyncLocked()
                await this.writeLine(text)
                if (!noReply) line = await this.readLine(this.timeoutMs, true)
            } catch (e: any) {
                this.transportFailed(e)
                throw e
            }
            this.transportOk()
            this.transactions++
        } finally {
            this.lock.release()
        }
        let rsp: any
        try {
            rsp = JSON.parse(line)
        } catch (e: any) {
            rsp = undefined
        }
        if (!rsp || typeof rsp !== "object" || Array.isArray(rsp)) {
            this.needResync = true // out of step with the card, or line noise
            throw new Error("Notecard reply is not a JSON object: " + line.slice(0, 60))
        }
        return rsp
    }

    /** transaction(), throwing a NotecardError when the reply has an `err` field */
    async request(req: any): Promise<any> {
        const rsp = await this.transaction(req)
        if (rsp.err !== undefined) throw new NotecardError(req.req || req.cmd, "" + rsp.err, rsp)
        return rsp
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /** hub.set: ProductUID, serial number, sync mode and outbound period (minutes) */
    async hubSet(o: HubSetOptions): Promise<void> {
        if (!o || typeof o.product !== "string" || o.product.length === 0) throw new Error("hubSet: product is required")
        const r: any = { req: "hub.set", product: o.product }
        if (o.sn !== undefined) r.sn = o.sn
        if (o.mode !== undefined) {
            if (o.mode !== "periodic" && o.mode !== "continuous" && o.mode !== "minimum" && o.mode !== "off")
                throw new Error("hubSet: unknown mode " + o.mode)
            r.mode = o.mode
        }
        if (o.outbound !== undefined) r.outbound = o.outbound
        if (o.inbound !== undefined) r.inbound = o.inbound
        await this.request(r)
    }

    /**
     * note.add to an outbound queue (`*.qo`). `payload` (binary, e.g. a batch) travels base64-encoded
     * in the note's `payload` field; `body` is a small JSON object (may be undefined). `sync` asks the
     * card to sync right away. Returns the number of notes now waiting in that file.
     */
    async noteAdd(file: string, body: any, sync = false, payload: Buffer = undefined): Promise<number> {
        const r: any = { req: "note.add", file }
        if (body !== undefined) r.body = body
        if (payload !== undefined) r.payload = await base64Encode(payload)
        if (sync) r.sync = true
        const rsp = await this.request(r)
        return int(rsp.total)
    }

    /** hub.sync: start a sync now */
    async hubSync(): Promise<void> {
        await this.request({ req: "hub.sync" })
    }

    /** hub.sync.status. The reply's `err` is the last sync's error (syncErr), not a request error. */
    async hubSyncStatus(): Promise<SyncStatus> {
        const rsp = await this.transaction({ req: "hub.sync.status" })
        if (typeof rsp.status !== "string" && rsp.err !== undefined) throw new NotecardError("hub.sync.status", "" + rsp.err, rsp)
        return {
            status: typeof rsp.status === "string" ? rsp.status : "",
            sync: rsp.sync === true,
            requested: int(rsp.requested),
            completed: int(rsp.completed),
            time: int(rsp.time),
            alert: rsp.alert === true,
            syncErr: rsp.err === undefined ? undefined : "" + rsp.err,
        }
    }

    /**
     * card.time: UTC seconds from the network, or undefined when the card has no valid time yet
     * (`{no-time}` error, no `time` field, or a value outside [MIN_VALID_UTC, MAX_VALID_UTC)).
     * Throws on transport failures and other card errors.
     */
    async cardTime(): Promise<number> {
        let rsp: any
        try {
            rsp = await this.request({ req: "card.time" })
        } catch (e: any) {
            if (e instanceof NotecardError && (e as NotecardError).hasCode("{no-time}")) return undefined
            throw e
        }
        const t = rsp.time
        if (typeof t !== "number" || t !== Math.floor(t) || t < MIN_VALID_UTC || t >= MAX_VALID_UTC) return undefined
        return t
    }

    /** card.status: whether the card is connected to Notehub, storage use */
    async cardStatus(): Promise<CardStatus> {
        const rsp = await this.request({ req: "card.status" })
        return {
            status: typeof rsp.status === "string" ? rsp.status : "",
            connected: rsp.connected === true,
            storage: int(rsp.storage),
        }
    }

    /** card.wireless: radio status and signal bars */
    async cardWireless(): Promise<CardWireless> {
        const rsp = await this.request({ req: "card.wireless" })
        const bars = int(rsp.count)
        return { status: typeof rsp.status === "string" ? rsp.status : "", bars: bars ?? 0 }
    }

    /** connected to Notehub (card.status) */
    async isConnected(): Promise<boolean> {
        return (await this.cardStatus()).connected
    }

    // ---- wire protocol (lock held) ---------------------------------------------------------------

    /** "\n" until the card answers with a blank line; stale replies and partial requests are flushed */
    private async resyncLocked() {
        let got = ""
        for (let i = 0; i < RESYNC_ATTEMPTS; i++) {
            await this.writeLine("")
            got = await this.readLine(this.intraTimeoutMs + this.pollMs, false)
            if (got.length === 0) {
                this.needResync = false
                return
            }
            // a stale reply, or the error for a partial request our "\n" completed: once more
        }
        throw new Error("Notecard resync failed: " + got.slice(0, 40))
    }

    /** `text` plus "\n" in `[len][bytes]` chunks, paced in chunks and segments */
    private async writeLine(text: string) {
        // JSON.stringify escapes every non-ASCII character, so the text is ASCII and its string
        // offsets are byte offsets: chunks are cut from the string without an 8 KB byte copy.
        const ascii = text.byteLength === text.length
        const src: any = ascii ? text : Buffer.from(text)
        const total = text.byteLength + 1
        let sent = 0
        let inSegment = 0
        while (sent < total) {
            const n = Math.min(this.chunkBytes, total - sent)
            if (inSegment > 0 && inSegment + n > this.segmentBytes) {
                await this.clock.sleep(this.segmentDelayMs)
                inSegment = 0
            }
            const tx = Buffer.alloc(n + 1)
            tx[0] = n
            const fromText = Math.min(n, total - 1 - sent) // the last byte of the line is the newline
            if (fromText > 0) tx.blitAt(1, src, sent, fromText)
            if (fromText < n) tx[n] = NL
            await this.bus.xfer(this.address, tx, 0)
            sent += n
            inSegment += n
            await this.clock.sleep(this.chunkDelayMs)
        }
    }

    /**
     * Polls until a whole line is in and the card has nothing more waiting. Returns the first line
     * (or, with skipBlank, the first non-blank one), CR/LF trimmed; anything after it is discarded.
     * `firstByteMs`: how long to wait while no part of a wanted line has arrived.
     */
    private async readLine(firstByteMs: number, skipBlank: boolean): Promise<string> {
        let buf = Buffer.alloc(64)
        let len = 0
        let lineStart = 0 // start of the line being received
        let lineEnd = -1 // index of the "\n" ending the wanted line, -1 while not complete
        const t0 = this.clock.now()
        let lastByteAt = t0
        let avail = 0
        let reads = 0
        while (true) {
            const n = Math.min(avail, this.chunkBytes)
            const rx = await this.bus.xfer(this.address, Buffer.from([0, n]), n + 2)
            if (!rx || rx.length < n + 2) throw new Error("Notecard I2C: short read")
            if (rx[0] === 0xff && rx[1] === 0xff) throw new Error("Notecard not answering (I2C reads 0xFF)")
            const got = rx[1]
            if (got > n) throw new Error("Notecard I2C protocol error: asked " + n + ", header says " + got)
            if (got > 0) {
                if (len + got > MAX_REPLY_BYTES) throw new Error("Notecard reply too long")
                if (len + got > buf.length) {
                    const bigger = Buffer.alloc(Math.min(Math.max(buf.length * 2, len + got), MAX_REPLY_BYTES))
                    bigger.blitAt(0, buf, 0, len)
                    buf = bigger
                }
                buf.blitAt(len, rx, 2, got)
                const from = len
                len += got
                lastByteAt = this.clock.now()
                for (let i = from; i < len && lineEnd < 0; i++) {
                    if (buf[i] !== NL) continue
                    if (skipBlank && isBlankLine(buf, lineStart, i)) lineStart = i + 1
                    else lineEnd = i
                }
            }
            avail = rx[0]
            if (avail > 0) {
                // more waiting: fetch it now (yield now and then: a fiber that never does panics)
                if (++reads % 16 === 0) await ds.sleep(0)
                continue
            }
            if (lineEnd >= 0) break
            const now = this.clock.now()
            const started = len > lineStart // part of the wanted line is in
            if (started ? now - lastByteAt >= this.intraTimeoutMs : now - t0 >= firstByteMs)
                throw new Error(started ? "Notecard reply incomplete (timeout)" : "Notecard not answering (timeout)")
            await this.clock.sleep(this.pollMs)
        }
        let end = lineEnd
        while (end > lineStart && (buf[end - 1] === 0x0d || buf[end - 1] === 0x20)) end--
        return buf.slice(lineStart, end).toString()
    }
}
