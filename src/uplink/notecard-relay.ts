/**
 * The simulator's stand-in for Blues' cloud relay (Notehub plus a route to the ingest server).
 *
 * The Notecard model in the VM hands synced notes over (`takeOutbound()`); whatever carries them to
 * the host pushes them into a NoteRelay, which delivers each note's binary payload to a callback
 * (e.g. a POST to the ingest server) the way a real cloud route does: late, sometimes out of order,
 * sometimes twice, but never lost (a delivery that throws is retried). All of it is deterministic:
 * a seeded PRNG decides delays, hold-backs and duplicates in push order, and time comes from an
 * injectable clock, so a scenario replays exactly.
 */

/** A note as the Notecard model hands it over: the payload is base64 (the card's `payload` field). */
export interface RelayNote {
    file?: string
    body?: unknown
    payload: string
    /** UTC seconds when the card queued it (0: the card had no time) */
    time?: number
}

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * A note's base64 payload -> bytes. Strict (Node's own decoder silently skips bad characters):
 * standard alphabet, "=" padding, canonical trailing bits. Throws on anything else.
 */
export function decodeNotePayload(base64: string): Buffer {
    if (typeof base64 !== "string") throw new Error("note payload: not a string")
    if (!B64_RE.test(base64)) throw new Error(`note payload: not canonical base64 (${base64.length} chars)`)
    const bytes = Buffer.from(base64, "base64")
    if (bytes.toString("base64") !== base64) throw new Error("note payload: non-zero padding bits")
    return bytes
}

/** mulberry32: small, fast, good enough to shuffle deliveries reproducibly */
export function mulberry32(seed: number): () => number {
    let a = seed >>> 0
    return () => {
        a = (a + 0x6d2b79f5) >>> 0
        let t = a
        t = Math.imul(t ^ (t >>> 15), t | 1)
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
}

export interface NoteRelayOptions {
    /** PRNG seed (default 1): same seed and same pushes give the same deliveries */
    seed?: number
    /** every note waits at least this long (ms), default 0 */
    delayMs?: number
    /** plus a uniform random extra in [0, jitterMs), default 0 */
    jitterMs?: number
    /** probability (0..1) that a note is held back `holdMs` more, so later notes overtake it */
    reorder?: number
    /** extra wait of a held-back note (ms), default 1000 */
    holdMs?: number
    /** probability (0..1) that a note is delivered a second time */
    duplicate?: number
    /** the copy comes this long after the first delivery is due, plus jitter (ms), default 500 */
    duplicateLagMs?: number
    /** a delivery that throws is tried again this much later (ms), default 1000 */
    retryMs?: number
    /** time source (ms), default Date.now; tests pass a virtual clock */
    now?: () => number
}

export type Deliver = (payload: Buffer, note: RelayNote) => void | Promise<void>

interface Entry {
    due: number
    /** tie-break: scheduling order */
    order: number
    /** index of the note in push order (0-based) */
    index: number
    copy: boolean
    payload: Buffer
    note: RelayNote
}

export interface RelayStats {
    /** notes pushed */
    pushed: number
    /** successful deliveries (copies included) */
    delivered: number
    /** extra copies scheduled */
    duplicates: number
    /** notes held back for reordering */
    heldBack: number
    /** deliveries that threw and were rescheduled */
    retries: number
}

export class NoteRelay {
    readonly stats: RelayStats = { pushed: 0, delivered: 0, duplicates: 0, heldBack: 0, retries: 0 }
    private readonly rand: () => number
    private readonly now: () => number
    private readonly o: Required<Omit<NoteRelayOptions, "now" | "seed">>
    private queue: Entry[] = []
    private order = 0
    private chain: Promise<unknown> = Promise.resolve()
    private timer: NodeJS.Timeout | undefined

    constructor(
        readonly deliver: Deliver,
        options: NoteRelayOptions = {},
    ) {
        this.rand = mulberry32(options.seed ?? 1)
        this.now = options.now ?? Date.now
        this.o = {
            delayMs: options.delayMs ?? 0,
            jitterMs: options.jitterMs ?? 0,
            reorder: options.reorder ?? 0,
            holdMs: options.holdMs ?? 1000,
            duplicate: options.duplicate ?? 0,
            duplicateLagMs: options.duplicateLagMs ?? 500,
            retryMs: options.retryMs ?? 1000,
        }
        for (const k of ["reorder", "duplicate"] as const) {
            const p = this.o[k]
            if (!(p >= 0 && p <= 1)) throw new Error(`NoteRelay: ${k} must be a probability, not ${p}`)
        }
    }

    /** deliveries waiting (copies included) */
    get pending(): number {
        return this.queue.length
    }

    /** when the next delivery is due (ms), undefined if none waits */
    nextDueAt(): number | undefined {
        return this.queue[0]?.due
    }

    /**
     * Queues notes (in the order the card handed them over). The payload is decoded now: a bad
     * payload is a bug upstream and throws here, before anything of this call is queued.
     */
    push(notes: RelayNote | RelayNote[]): void {
        const list = Array.isArray(notes) ? notes : [notes]
        const decoded = list.map(n => decodeNotePayload(n.payload))
        const t = this.now()
        list.forEach((note, i) => {
            const index = this.stats.pushed++
            // always four draws per note, so one knob does not shift the others' random streams
            const jitter = this.rand() * this.o.jitterMs
            const hold = this.rand() < this.o.reorder
            const dup = this.rand() < this.o.duplicate
            const dupJitter = this.rand() * this.o.jitterMs
            const due = t + this.o.delayMs + jitter + (hold ? this.o.holdMs : 0)
            if (hold) this.stats.heldBack++
            this.schedule({ due, order: 0, index, copy: false, payload: decoded[i], note })
            if (dup) {
                this.stats.duplicates++
                const copyDue = due + this.o.duplicateLagMs + dupJitter
                this.schedule({ due: copyDue, order: 0, index, copy: true, payload: decoded[i], note })
            }
        })
    }

    private schedule(e: Entry) {
        e.order = this.order++
        const after = (x: Entry) => x.due > e.due || (x.due === e.due && x.order > e.order)
        let i = this.queue.length
        while (i > 0 && after(this.queue[i - 1])) i--
        this.queue.splice(i, 0, e)
    }

    /** Delivers everything due now, in (due, scheduling) order. Returns the number delivered. */
    pump(): Promise<number> {
        return this.run(false)
    }

    /** Delivers everything still queued, due or not, in order (end of a scenario). */
    async drain(): Promise<number> {
        let n = 0
        while (this.queue.length > 0) {
            const before = this.stats.retries
            n += await this.run(true)
            if (this.stats.retries !== before && this.queue.length > 0) {
                // the callback is failing: give it the retry delay rather than spinning
                await new Promise(r => setTimeout(r, Math.min(this.o.retryMs, 50)))
            }
        }
        return n
    }

    private run(all: boolean): Promise<number> {
        // one pump at a time: the interval timer and an explicit call must not deliver twice
        const p = this.chain.then(() => this.runOnce(all))
        this.chain = p.catch(() => {})
        return p
    }

    private async runOnce(all: boolean): Promise<number> {
        const t = this.now()
        let n = 0
        const failed: Entry[] = []
        while (this.queue.length > 0 && (all || this.queue[0].due <= t)) {
            const e = this.queue.shift()!
            try {
                await this.deliver(e.payload, e.note)
                this.stats.delivered++
                n++
            } catch {
                this.stats.retries++
                failed.push(e)
                if (all) break
            }
        }
        for (const e of failed) this.schedule({ ...e, due: this.now() + this.o.retryMs })
        return n
    }

    /** Pumps every `intervalMs` of real time (the simulator). */
    start(intervalMs = 10): void {
        if (this.timer) return
        this.timer = setInterval(() => {
            void this.pump().catch(() => {})
        }, intervalMs)
        this.timer.unref?.()
    }

    stop(): void {
        if (this.timer) clearInterval(this.timer)
        this.timer = undefined
    }
}
