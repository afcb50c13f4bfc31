// Rules every store applies the same way: what a registration and a reader must look like, and
// how reader keys are made and hashed.
import { createHash, randomBytes } from "node:crypto"
import { KEY_LEN, devidHex } from "../../format/index.js"
import { RegistrationError, type ReaderInput, type Registration } from "./store.js"

/** A registration with its devid normalised, or RegistrationError naming what is wrong. */
export function checkRegistration(r: Registration & { devid: string | Buffer; lockey?: unknown }): Registration {
    // the server never holds the location key: refuse it rather than drop it silently
    if (r.lockey !== undefined && r.lockey !== null)
        throw new RegistrationError("the ingest server never holds lockey: register without it")
    let devid: string
    try {
        devid = devidHex(r.devid)
    } catch (e) {
        throw new RegistrationError((e as Error).message)
    }
    for (const [name, k] of [
        ["k0", r.k0],
        ["ackkey", r.ackkey],
    ] as const) {
        if (!Buffer.isBuffer(k) || k.length !== KEY_LEN) throw new RegistrationError(`${name} must be ${KEY_LEN} bytes, got ${k?.length}`)
    }
    const configHash = r.configHash ?? null
    if (configHash !== null && (!Buffer.isBuffer(configHash) || configHash.length !== 16))
        throw new RegistrationError(`configHash must be 16 bytes, got ${configHash?.length}`)
    const label = r.label ?? null
    if (label !== null && (typeof label !== "string" || label.length > 200))
        throw new RegistrationError("label must be text, at most 200 characters")
    return { devid, k0: r.k0, ackkey: r.ackkey, label, configHash }
}

/** Reader keys: "ctr_" and 32 random bytes in base64url (47 characters). */
export const READER_KEY_PREFIX = "ctr_"

export function readerKeyHash(key: string): Buffer {
    return createHash("sha256").update(key, "utf8").digest()
}

export function newReaderKey(): string {
    return READER_KEY_PREFIX + randomBytes(32).toString("base64url")
}

/** The reader's name, trimmed, or RangeError. */
export function checkReader(r: ReaderInput): string {
    const name = typeof r.name === "string" ? r.name.trim() : ""
    if (!name || name.length > 100 || /[^\x20-\x7e]/.test(name))
        throw new RangeError("reader name must be 1..100 printable ASCII characters")
    if (typeof r.positions !== "boolean") throw new RangeError("positions must be true or false")
    return name
}

export const nowIso = () => new Date().toISOString()

/** Record kinds as SQL literals (integers only), so a planner sees they match a partial index. */
export function kindList(kinds: number[]): string {
    if (!kinds.length || !kinds.every(k => Number.isInteger(k) && k >= 0 && k <= 255)) throw new RangeError(`kinds ${kinds}`)
    return kinds.join(", ")
}
