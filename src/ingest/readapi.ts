// The read API (docs/ingest.md): devices, records by seq range, alarms and checkpoints, as
// JSON, for readers holding an access key (`Authorization: Bearer <key>`, see addReader).
//
// Positions (stop and fix records) leave the server as the AES-CCM ciphertext the device recorded
// (docs/format.md section 2.2): the server never holds a location key (docs/security.md), so only
// a reader holding the device's lockey can decrypt them.
import {
    ALARM_TYPE,
    BATTERY_FLAG,
    BATTERY_LEVEL,
    BOOT_REASON,
    BOOT_RTC,
    KIND,
    MAX_SEQ,
    TIME_FLAG,
    TIME_SOURCE,
    decodeRecord,
    isFaulted,
    type LogRecord,
} from "../format/index.js"
import { unexplained } from "./segments.js"
import type { IngestStore, ReaderRow } from "./store/store.js"

/** What a read request ended with; the server turns it into a reply and a log line. */
export interface ReadReply {
    status: number
    /** the JSON body of a 200 */
    json?: unknown
    /** one-line reason of an error (sent as `{"error": reason}`) */
    reason?: string
    headers?: Record<string, string>
    devid?: string
    /** the reader's name (never its key) */
    reader?: string
    /** items returned (devices, records, alarms, checkpoints) */
    n?: number
}

export const DEFAULT_LIMIT = 1000
export const MAX_LIMIT = 10_000

const KIND_NAME: Record<number, string> = Object.fromEntries(Object.entries(KIND).map(([k, v]) => [v, k]))
const invert = (o: Record<string, number>): Record<number, string> => Object.fromEntries(Object.entries(o).map(([k, v]) => [v, k]))
const BOOT_REASON_NAME = invert(BOOT_REASON)
const BATTERY_LEVEL_NAME = invert(BATTERY_LEVEL)
const TIME_SOURCE_NAME = invert(TIME_SOURCE)
const ALARM_TYPE_NAME = invert(ALARM_TYPE)

const DEVID_RE = /^[0-9a-f]{16}$/

function fail(status: number, reason: string, extra: Partial<ReadReply> = {}): ReadReply {
    return { status, reason, ...extra }
}

/**
 * The reader behind an `Authorization` header, or the 401 to send. There is no default or
 * anonymous reader: with no readers registered every request is refused.
 */
async function authenticate(store: IngestStore, header: string | undefined): Promise<ReaderRow | ReadReply> {
    const challenge = (error?: string) => ({
        "WWW-Authenticate": error ? `Bearer realm="coldtrace", error="${error}"` : `Bearer realm="coldtrace"`,
    })
    if (header === undefined || header === "") {
        return fail(401, "no reader key: send Authorization: Bearer <key>", { headers: challenge() })
    }
    const m = /^Bearer +([A-Za-z0-9_-]{1,200})\s*$/.exec(header)
    if (!m) return fail(401, "malformed Authorization header: expected Bearer <key>", { headers: challenge("invalid_request") })
    const reader = await store.readerByKey(m[1])
    if (!reader) return fail(401, "unknown reader key", { headers: challenge("invalid_token") })
    return reader
}

/** A non-negative integer query parameter, or an error reason. */
function intParam(q: URLSearchParams, name: string, def: number, max: number): number | string {
    const v = q.get(name)
    if (v === null) return def
    if (!/^\d{1,10}$/.test(v) || Number(v) > max) return `${name} must be an integer in 0..${max}, got ${JSON.stringify(v.slice(0, 20))}`
    return Number(v)
}

const hex = (b: Buffer) => b.toString("hex")

/** One stored record as JSON: its decoded fields; buffers (positions included) as hex. */
export function recordJson(bytes: Buffer): Record<string, unknown> {
    const r: LogRecord = decodeRecord(bytes)
    const base = { seq: r.seq, kind: r.kind, name: KIND_NAME[r.kind] ?? "unknown", t: r.t }
    const position = (loc: Buffer) => ({ loc: hex(loc) })
    if ("payload" in r) return { ...base, payload: hex(r.payload) }
    switch (r.kind) {
        case KIND.sample: {
            const faulted = isFaulted(r)
            return {
                ...base,
                tc: r.tc,
                cj: r.cj,
                sr: r.sr,
                sflags: r.sflags,
                faulted,
                celsius: faulted ? null : r.tc / 128,
                cjCelsius: r.cj / 64,
            }
        }
        case KIND.boot:
            return {
                ...base,
                boot: r.boot,
                reason: r.reason,
                reasonName: BOOT_REASON_NAME[r.reason] ?? "unknown",
                rtc: r.rtc,
                rtcFlags: flagNames(BOOT_RTC, r.rtc),
                prev: hex(r.prev),
                fw: hex(r.fw),
            }
        case KIND.config:
            return { ...base, hash: hex(r.hash) }
        case KIND.time:
            return {
                ...base,
                utc: r.utc,
                utcIso: safeIso(r.utc),
                source: r.source,
                sourceName: TIME_SOURCE_NAME[r.source] ?? "unknown",
                flags: r.flags,
                set: (r.flags & TIME_FLAG.set) !== 0,
            }
        case KIND.stop:
            return { ...base, start: r.start, ...position(r.loc) }
        case KIND.alarm:
            return { ...base, type: r.type, typeName: ALARM_TYPE_NAME[r.type] ?? "unknown", tc: r.tc, celsius: r.tc / 128 }
        case KIND.evicted:
            return {
                ...base,
                first: r.first,
                last: r.last,
                samples: r.samples,
                tFirst: r.tFirst,
                tLast: r.tLast,
                minTc: r.minTc,
                maxTc: r.maxTc,
                outMin: r.outMin,
                srOr: r.srOr,
                sflagsOr: r.sflagsOr,
            }
        case KIND.seal:
            return { ...base, epoch: r.epoch, count: r.count, mac: hex(r.mac) }
        case KIND.fix:
            return { ...base, ...position(r.loc), fix: r.fix, sv: r.sv }
        case KIND.battery:
            return {
                ...base,
                mv: r.mv,
                level: r.level,
                levelName: BATTERY_LEVEL_NAME[r.level] ?? "unknown",
                flags: r.flags,
                external: (r.flags & BATTERY_FLAG.external) !== 0,
            }
        case KIND.ruleAlarm:
            return { ...base, rule: r.rule, raise: r.raise, why: r.why, type: r.type, value: r.value }
        case KIND.lid:
            return { ...base, first: r.first, openEdge: r.openEdge, count: r.count, open: r.open, flags: r.flags }
    }
    return base
}

/** names of the bits set in `v`, e.g. ["lost", "unset"] */
function flagNames(bits: { readonly [name: string]: number }, v: number): string[] {
    return Object.entries(bits)
        .filter(([, b]) => (v & b) !== 0)
        .map(([n]) => n)
}

function safeIso(ms: number): string | null {
    const d = new Date(ms)
    return Number.isNaN(d.getTime()) ? null : d.toISOString()
}

/** What a reader learns about positions: always ciphertext, the server holds no location key. */
function positionsNote(reader: ReaderRow): string {
    return reader.positions
        ? "encrypted: the server holds no location keys; decrypt with the device's lockey"
        : "encrypted: this reader key may not see positions"
}

async function listDevices(store: IngestStore, devid?: string): Promise<object[]> {
    const rows = await store.devices(devid)
    const out: object[] = []
    for (const r of rows) out.push({ ...r, unexplainedSegments: unexplained(await store.segments(r.devid)).length })
    return out
}

/**
 * Handles a request under /v1/devices, or returns null for any other path. `query` is the
 * URL's search part; `authorization` the raw header (never logged).
 */
export async function handleRead(
    store: IngestStore,
    method: string | undefined,
    path: string,
    query: URLSearchParams,
    authorization: string | undefined,
): Promise<ReadReply | null> {
    const parts = path.split("/") // "", "v1", "devices", devid?, what?
    if (parts[1] !== "v1" || parts[2] !== "devices" || parts.length > 5) return null

    const auth = await authenticate(store, authorization)
    if ("status" in auth) return auth
    const reader = auth.name
    if (method !== "GET") return fail(405, "use GET", { reader, headers: { Allow: "GET" } })

    if (parts.length === 3) {
        const devices = await listDevices(store)
        return { status: 200, json: { devices }, reader, n: devices.length }
    }
    const devid = parts[3]
    if (!DEVID_RE.test(devid)) return fail(400, "a device id is 16 lower-case hex digits", { reader })
    const device = await store.device(devid)
    if (!device) return fail(404, `no such device: ${devid}`, { reader, devid })
    const what = parts[4]
    const base = { reader, devid }

    if (what === undefined) return { status: 200, json: (await listDevices(store, devid))[0], ...base, n: 1 }

    if (what === "records") {
        const from = intParam(query, "from", 0, MAX_SEQ)
        const to = intParam(query, "to", MAX_SEQ, MAX_SEQ)
        const limit = intParam(query, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        for (const v of [from, to, limit]) if (typeof v === "string") return fail(400, v, base)
        const [f, t, l] = [from, to, limit] as number[]
        if (f > t) return fail(400, `from ${f} is after to ${t}`, base)
        if (l < 1) return fail(400, "limit must be at least 1", base)
        const rows = await store.records(devid, f, t, l + 1)
        const more = rows.length > l
        const page = more ? rows.slice(0, l) : rows
        const records = page.map(row => recordJson(row.bytes))
        return {
            status: 200,
            ...base,
            n: records.length,
            json: { devid, from: f, to: t, positions: positionsNote(auth), records, next: more ? rows[l].seq : null },
        }
    }

    if (what === "alarms") {
        const rows = await store.recordsOfKinds(devid, [KIND.alarm, KIND.evicted])
        const alarms = rows.filter(r => r.kind === KIND.alarm).map(r => recordJson(r.bytes))
        // evicted summaries that say an excursion or a fault happened in records that never arrived
        const evicted = rows
            .filter(r => r.kind === KIND.evicted && r.bytes.length === 40)
            .map(r => recordJson(r.bytes))
            .filter(e => (e.outMin as number) > 0 || (e.srOr as number) !== 0 || (e.sflagsOr as number) !== 0)
        return { status: 200, ...base, n: alarms.length + evicted.length, json: { devid, alarms, evicted } }
    }

    if (what === "checkpoints") {
        const checkpoints = (await store.checkpoints(devid)).map(c => ({
            id: c.id,
            seq: c.seq,
            head: c.head ? hex(c.head) : null,
            boot: c.boot,
            epoch: c.epoch,
            status: c.status,
            at: c.at,
        }))
        return { status: 200, ...base, n: checkpoints.length, json: { devid, checkpoints } }
    }

    return fail(404, `no such endpoint: ${path}`, base)
}
