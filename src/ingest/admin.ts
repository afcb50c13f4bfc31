// The admin API (docs/ingest.md): registering and retiring devices, adding and removing readers,
// for whoever holds the admin token (the USB provisioning tool, an operator). JSON in and out.
// Keys arrive in a request body and go straight to the store: they never reach a log line.
import { createHash, timingSafeEqual } from "node:crypto"
import { KEY_LEN } from "../format/index.js"
import { RegistrationError, type IngestStore } from "./store/store.js"

export interface AdminReply {
    status: number
    json: unknown
    reason?: string
    headers?: Record<string, string>
    devid?: string
    /** what was done, for the log line */
    admin?: string
}

/** Bodies of admin requests are a few hundred bytes. */
export const ADMIN_MAX_BODY = 16 * 1024

const DEVID_RE = /^[0-9a-f]{16}$/
const sha = (s: string) => createHash("sha256").update(s, "utf8").digest()

function fail(status: number, reason: string, extra: Partial<AdminReply> = {}): AdminReply {
    return { status, json: { status, error: reason }, reason, ...extra }
}

/** Constant-time: compares SHA-256 digests, so neither the length nor a prefix of the token leaks. */
export function adminAuthorized(token: string | null, header: string | undefined): boolean {
    if (!token || !header) return false
    const m = /^Bearer +(\S{1,500})\s*$/.exec(header)
    return m !== null && timingSafeEqual(sha(m[1]), sha(token))
}

function hexKey(v: unknown, name: string): Buffer | string {
    if (typeof v !== "string" || !new RegExp(`^[0-9a-fA-F]{${2 * KEY_LEN}}$`).test(v)) return `${name} must be ${2 * KEY_LEN} hex digits`
    return Buffer.from(v, "hex")
}

/**
 * Handles a request under /v1/admin/, or returns null for any other path. `body` is read only
 * for methods that carry one (the caller passes a reader).
 */
export async function handleAdmin(
    store: IngestStore,
    token: string | null,
    method: string | undefined,
    path: string,
    authorization: string | undefined,
    readBody: () => Promise<Buffer | null>,
): Promise<AdminReply | null> {
    const parts = path.split("/") // "", "v1", "admin", what, id?
    if (parts[1] !== "v1" || parts[2] !== "admin") return null
    if (!token) return fail(403, "the admin API is off: start the server with an admin token")
    if (!adminAuthorized(token, authorization))
        return fail(401, "admin token required: Authorization: Bearer <token>", {
            headers: { "WWW-Authenticate": 'Bearer realm="coldtrace-admin"' },
        })
    const [what, id] = [parts[3], parts[4]]
    if (parts.length > 5) return fail(404, `no such endpoint: ${path}`)

    if (what === "devices" && id === undefined && method === "POST") {
        const j = await jsonBody(readBody)
        if (typeof j === "string") return fail(400, j)
        if (j.lockey !== undefined) return fail(400, "the ingest server never holds lockey: send devid, k0, ackkey and label only")
        const k0 = hexKey(j.k0, "k0")
        const ackkey = hexKey(j.ackkey, "ackkey")
        for (const k of [k0, ackkey]) if (typeof k === "string") return fail(400, k)
        if (typeof j.devid !== "string" || !DEVID_RE.test(j.devid)) return fail(400, "devid must be 16 lower-case hex digits")
        if (j.label !== undefined && typeof j.label !== "string") return fail(400, "label must be text")
        if (j.configHash !== undefined && (typeof j.configHash !== "string" || !/^[0-9a-fA-F]{32}$/.test(j.configHash)))
            return fail(400, "configHash must be 32 hex digits")
        try {
            await store.registerDevice({
                devid: j.devid,
                k0: k0 as Buffer,
                ackkey: ackkey as Buffer,
                label: (j.label as string) ?? null,
                configHash: typeof j.configHash === "string" ? Buffer.from(j.configHash, "hex") : null,
            })
        } catch (e) {
            if (!(e instanceof RegistrationError)) throw e
            const exists = /already registered/.test(e.message)
            return fail(exists ? 409 : 400, e.message, { devid: j.devid })
        }
        return { status: 201, json: { devid: j.devid, status: "registered" }, devid: j.devid, admin: "register device" }
    }
    if (what === "devices" && id !== undefined && method === "DELETE") {
        if (!DEVID_RE.test(id)) return fail(400, "a device id is 16 lower-case hex digits")
        if (!(await store.retireDevice(id))) return fail(404, `no active device ${id}`, { devid: id })
        return { status: 200, json: { devid: id, status: "retired" }, devid: id, admin: "retire device" }
    }
    if (what === "readers" && id === undefined && method === "POST") {
        const j = await jsonBody(readBody)
        if (typeof j === "string") return fail(400, j)
        let key: string
        try {
            key = await store.addReader({ name: j.name as string, positions: j.positions as boolean })
        } catch (e) {
            const msg = (e as Error).message
            if (e instanceof RangeError) return fail(400, msg)
            if (/already exists/.test(msg)) return fail(409, msg)
            throw e
        }
        // the key is in this reply only: the store keeps its SHA-256
        return { status: 201, json: { name: String(j.name).trim(), key }, admin: "add reader" }
    }
    if (what === "readers" && id !== undefined && method === "DELETE") {
        let name: string
        try {
            name = decodeURIComponent(id)
        } catch {
            return fail(400, "reader name is not valid URL encoding")
        }
        if (!(await store.removeReader(name))) return fail(404, `no reader ${JSON.stringify(name)}`)
        return { status: 200, json: { name, status: "removed" }, admin: "remove reader" }
    }
    if ((what === "devices" || what === "readers") && (id === undefined ? method !== "POST" : method !== "DELETE"))
        return fail(405, id === undefined ? "use POST" : "use DELETE")
    return fail(404, `no such endpoint: ${path}`)
}

async function jsonBody(readBody: () => Promise<Buffer | null>): Promise<Record<string, unknown> | string> {
    const body = await readBody()
    if (!body) return `body missing or larger than ${ADMIN_MAX_BODY} bytes`
    try {
        const j = JSON.parse(body.toString("utf8"))
        return j && typeof j === "object" && !Array.isArray(j) ? j : "body must be a JSON object"
    } catch {
        return "body is not JSON"
    }
}
