// The checkpoint witness (docs/witness.md, issue 12 item 2): a small independent process with its
// own Ed25519 key and its own SQLite file. The ingest server posts every checkpoint it issues; the
// witness checks it against what it cosigned before for that device and cosigns it, or refuses
// with a reason. It never cosigns a different head at a seq it cosigned, nor a checkpoint that is
// not on the chain through every checkpoint it cosigned (C2SP tlog-witness / RFC 9162 idea, for a
// hash chain: the consistency proof is the records between the checkpoints).
//
// What the witness keeps is what the verifier needs to catch a server database that was truncated
// or restored from an older copy: a signed (devid, seq, head) for every checkpoint, held apart
// from the server.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto"
import { chmodSync, closeSync, existsSync, openSync, readFileSync, writeFileSync } from "node:fs"
import http from "node:http"
import type { AddressInfo } from "node:net"
import Database from "better-sqlite3"
import { HEAD_LEN, devidBytes, genesisHead, nextHead } from "../format/index.js"

export const COSIGN_TAG = "coldtrace-cosign-v1"
export const WITNESS_LOG_FORMAT = "coldtrace-witness-log-v1"
/** Records one proof may carry (a witness down for weeks of a busy logger still fits). */
export const MAX_PROOF_RECORDS = 200_000
/** Far above MAX_PROOF_RECORDS records in hex JSON. */
export const MAX_COSIGN_BODY = 64 * 1024 * 1024

/** The bytes a cosignature signs: tag || devid (8) || u32 seq || head (32) || u64 at (ms since 1970). */
export function cosignMessage(devid: string, seq: number, head: Buffer, at: number): Buffer {
    const m = Buffer.alloc(COSIGN_TAG.length + 8 + 4 + HEAD_LEN + 8)
    let o = m.write(COSIGN_TAG, 0, "ascii")
    o += devidBytes(devid).copy(m, o)
    o = m.writeUInt32LE(seq, o)
    o += head.copy(m, o)
    m.writeBigUInt64LE(BigInt(at), o)
    return m
}

/** The raw 32-byte Ed25519 public key of a key object. */
export function rawPublicKey(k: KeyObject): Buffer {
    const der = createPublicKey(k).export({ format: "der", type: "spki" })
    return der.subarray(der.length - 32)
}

export function publicKeyFromRaw(raw: Buffer): KeyObject {
    if (raw.length !== 32) throw new RangeError(`an Ed25519 public key is 32 bytes, got ${raw.length}`)
    return createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]), format: "der", type: "spki" })
}

/** First 8 bytes of SHA-256 of the raw public key, hex: how logs and the server name a witness. */
export function keyId(raw: Buffer): string {
    return createHash("sha256").update(raw).digest().subarray(0, 8).toString("hex")
}

export function verifyCosignature(publicKey: Buffer, devid: string, seq: number, head: Buffer, at: number, sig: Buffer): boolean {
    try {
        return verify(null, cosignMessage(devid, seq, head, at), publicKeyFromRaw(publicKey), sig)
    } catch {
        return false
    }
}

/** A run of consecutive records of the proof; a later run restarts at a PREV segment's stated head. */
export interface ProofRun {
    start: number
    /** hex head[start - 1] as a PREV batch stated it: only for a run after a gap */
    prevHead?: string
    /** hex canonical records start, start + 1, ... */
    records: string[]
}

/** What the ingest server posts. */
export interface CosignRequest {
    devid: string
    seq: number
    /** hex head[seq] */
    head: string
    boot: number
    epoch: number
    /** the records from a checkpoint the witness cosigned (or genesis) up to this one, or past it to the latest cosigned */
    proof: { runs: ProofRun[] }
}

export interface Cosignature {
    devid: string
    seq: number
    head: string
    at: number
    /** hex Ed25519 signature over cosignMessage */
    sig: string
    /** key id of the witness */
    witness: string
}

export type CosignResult =
    | ({ status: "cosigned" } & Cosignature)
    | { status: "refused"; reason: string; latest: { seq: number; head: string } | null }
    | { status: "bad-request"; reason: string }

/** One device's history as the witness cosigned it. */
export interface WitnessLog {
    format: typeof WITNESS_LOG_FORMAT
    /** hex raw Ed25519 public key */
    publicKey: string
    witness: string
    devid: string
    cosigned: { seq: number; head: string; boot: number; epoch: number; at: number; sig: string }[]
    refused: { seq: number; head: string; at: number; reason: string }[]
}

/** Opens (creating, mode 0600) the witness's own database. */
export function openWitnessDb(file: string): Database.Database {
    if (file !== ":memory:") {
        if (!existsSync(file)) closeSync(openSync(file, "a", 0o600))
        chmodSync(file, 0o600)
    }
    const db = new Database(file)
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = FULL")
    db.exec(`
CREATE TABLE IF NOT EXISTS cosigned (
  devid TEXT NOT NULL,
  seq   INTEGER NOT NULL,
  head  BLOB NOT NULL,
  boot  INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  at    INTEGER NOT NULL,     -- ms since 1970, signed with the rest
  sig   BLOB NOT NULL,
  PRIMARY KEY (devid, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refused (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  devid  TEXT NOT NULL,
  seq    INTEGER NOT NULL,
  head   BLOB,
  at     INTEGER NOT NULL,
  reason TEXT NOT NULL
);`)
    return db
}

/** The witness's Ed25519 key from a PEM file, made (mode 0600) when the file does not exist. */
export function loadOrCreateKey(file: string): KeyObject {
    if (!existsSync(file)) {
        const { privateKey } = generateKeyPairSync("ed25519")
        writeFileSync(file, privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 })
    }
    chmodSync(file, 0o600)
    return createPrivateKey(readFileSync(file))
}

const HEX64 = /^[0-9a-f]{64}$/
const isU32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xfffffffe

/** Checks the shape of a request; a string says what is wrong. */
function parseRequest(j: unknown): CosignRequest | string {
    const r = j as CosignRequest
    if (!r || typeof r !== "object") return "body must be a JSON object"
    if (typeof r.devid !== "string" || !/^[0-9a-f]{16}$/.test(r.devid)) return "devid must be 16 lower-case hex digits"
    if (!isU32(r.seq)) return "seq must be a u32"
    if (typeof r.head !== "string" || !HEX64.test(r.head)) return "head must be 64 hex digits"
    if (!isU32(r.boot) || !isU32(r.epoch)) return "boot and epoch must be u32"
    const runs = r.proof?.runs
    if (!Array.isArray(runs)) return "proof.runs must be a list"
    let n = 0
    for (const run of runs) {
        if (!run || !Number.isInteger(run.start) || run.start < 0 || !Array.isArray(run.records))
            return "a proof run needs start and records"
        if (run.prevHead !== undefined && (typeof run.prevHead !== "string" || !HEX64.test(run.prevHead)))
            return "a run's prevHead must be 64 hex digits"
        n += run.records.length
        if (run.records.some(x => typeof x !== "string" || !/^([0-9a-f]{2})+$/.test(x))) return "records must be hex"
    }
    if (n > MAX_PROOF_RECORDS) return `a proof carries at most ${MAX_PROOF_RECORDS} records`
    return r
}

/** The witness's rules and storage, without HTTP. */
export class Witness {
    readonly publicKey: Buffer
    readonly id: string
    constructor(
        readonly db: Database.Database,
        private readonly key: KeyObject,
        private readonly now: () => number = Date.now,
    ) {
        this.publicKey = rawPublicKey(key)
        this.id = keyId(this.publicKey)
    }

    private cosignedAt(devid: string, seq: number): { head: Buffer; at: number; sig: Buffer } | undefined {
        return this.db.prepare("SELECT head, at, sig FROM cosigned WHERE devid = ? AND seq = ?").get(devid, seq) as
            { head: Buffer; at: number; sig: Buffer } | undefined
    }

    latest(devid: string): { seq: number; head: Buffer } | null {
        return (
            (this.db.prepare("SELECT seq, head FROM cosigned WHERE devid = ? ORDER BY seq DESC LIMIT 1").get(devid) as
                { seq: number; head: Buffer } | undefined) ?? null
        )
    }

    private refuse(r: CosignRequest, reason: string): CosignResult {
        this.db
            .prepare("INSERT INTO refused (devid, seq, head, at, reason) VALUES (?, ?, ?, ?, ?)")
            .run(r.devid, r.seq, Buffer.from(r.head, "hex"), this.now(), reason)
        const l = this.latest(r.devid)
        return { status: "refused", reason, latest: l ? { seq: l.seq, head: l.head.toString("hex") } : null }
    }

    /** Cosigns the checkpoint, or refuses it with the reason (also kept in its database). */
    cosign(body: unknown): CosignResult {
        const r = parseRequest(body)
        if (typeof r === "string") return { status: "bad-request", reason: r }
        return this.db.transaction((): CosignResult => this.decide(r)).immediate()
    }

    private decide(r: CosignRequest): CosignResult {
        const head = Buffer.from(r.head, "hex")
        const latest = this.latest(r.devid)
        const same = this.cosignedAt(r.devid, r.seq)
        if (same) {
            if (!same.head.equals(head))
                return this.refuse(r, `a different head at seq ${r.seq}: the witness cosigned ${same.head.toString("hex")} there`)
            return {
                status: "cosigned",
                devid: r.devid,
                seq: r.seq,
                head: r.head,
                at: same.at,
                sig: same.sig.toString("hex"),
                witness: this.id,
            }
        }
        // the proof: from a cosigned checkpoint (or genesis) along the records, through every
        // checkpoint cosigned on the way, to this one (and on to the latest cosigned when this one is below it)
        const runs = r.proof.runs
        if (!runs.length)
            return this.refuse(r, `no proof: the witness has not cosigned seq ${r.seq} and nothing links it to what it cosigned`)
        const anchor = runs[0].start - 1
        let h: Buffer
        if (anchor === -1) h = genesisHead(r.devid)
        else {
            const a = this.cosignedAt(r.devid, anchor)
            if (!a) return this.refuse(r, `the proof starts after seq ${anchor}, which the witness has not cosigned`)
            h = a.head
        }
        if (runs[0].prevHead !== undefined) return this.refuse(r, "the first run of a proof chains from a cosigned head, not a stated one")
        const cosigned = new Map(
            (
                this.db.prepare("SELECT seq, head FROM cosigned WHERE devid = ? AND seq > ? ORDER BY seq").all(r.devid, anchor) as {
                    seq: number
                    head: Buffer
                }[]
            ).map(x => [x.seq, x.head]),
        )
        let reached: Buffer | null = null
        let end = anchor
        for (const [i, run] of runs.entries()) {
            if (i > 0) {
                if (run.start <= end + 1 || run.prevHead === undefined)
                    return this.refuse(r, `proof run ${i} must start after a gap with the head a PREV batch stated`)
                for (const q of cosigned.keys())
                    if (q > end && q < run.start - 1)
                        return this.refuse(
                            r,
                            `the proof skips seq ${end + 1}..${run.start - 1}, which holds the cosigned checkpoint at seq ${q}`,
                        )
                h = Buffer.from(run.prevHead, "hex")
                const c = cosigned.get(run.start - 1)
                if (c && !c.equals(h))
                    return this.refuse(r, `the proof's head at seq ${run.start - 1} contradicts the checkpoint cosigned there`)
                if (run.start - 1 === r.seq) reached = h
            }
            for (const [k, hex] of run.records.entries()) {
                const seq = run.start + k
                const bytes = Buffer.from(hex, "hex")
                if (bytes.length < 6 || bytes.readUInt32LE(0) !== seq)
                    return this.refuse(r, `proof record ${seq} is not the record of seq ${seq}`)
                h = nextHead(h, bytes)
                const c = cosigned.get(seq)
                if (c && !c.equals(h))
                    return this.refuse(
                        r,
                        `the chain the proof gives differs at seq ${seq} from the checkpoint cosigned there: another history (a rolled-back or forked server)`,
                    )
                if (seq === r.seq) reached = h
            }
            end = run.start + run.records.length - 1
        }
        if (!reached) return this.refuse(r, `the proof (to seq ${end}) does not reach seq ${r.seq}`)
        if (!reached.equals(head)) return this.refuse(r, `the proof's head at seq ${r.seq} is not the checkpoint's head`)
        if (latest && r.seq < latest.seq && end < latest.seq)
            return this.refuse(
                r,
                `seq ${r.seq} is below the latest cosigned seq ${latest.seq} and the proof stops at seq ${end}: a server that went back (restored or truncated)`,
            )
        const at = this.now()
        const sig = sign(null, cosignMessage(r.devid, r.seq, head, at), this.key)
        this.db
            .prepare("INSERT INTO cosigned (devid, seq, head, boot, epoch, at, sig) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .run(r.devid, r.seq, head, r.boot, r.epoch, at, sig)
        return { status: "cosigned", devid: r.devid, seq: r.seq, head: r.head, at, sig: sig.toString("hex"), witness: this.id }
    }

    log(devid: string): WitnessLog {
        const cos = this.db.prepare("SELECT seq, head, boot, epoch, at, sig FROM cosigned WHERE devid = ? ORDER BY seq").all(devid) as {
            seq: number
            head: Buffer
            boot: number
            epoch: number
            at: number
            sig: Buffer
        }[]
        const ref = this.db.prepare("SELECT seq, head, at, reason FROM refused WHERE devid = ? ORDER BY id").all(devid) as {
            seq: number
            head: Buffer | null
            at: number
            reason: string
        }[]
        return {
            format: WITNESS_LOG_FORMAT,
            publicKey: this.publicKey.toString("hex"),
            witness: this.id,
            devid,
            cosigned: cos.map(c => ({ ...c, head: c.head.toString("hex"), sig: c.sig.toString("hex") })),
            refused: ref.map(x => ({ ...x, head: x.head ? x.head.toString("hex") : "" })),
        }
    }
}

/** A witness log read back from the witness's own SQLite file (the public key from its key file or given). */
export function witnessLogFromDb(file: string, devid: string, publicKey: Buffer): WitnessLog {
    const db = new Database(file, { readonly: true, fileMustExist: true })
    try {
        const w = Object.create(Witness.prototype) as Witness
        Object.assign(w, { db, publicKey, id: keyId(publicKey) })
        return w.log(devid)
    } finally {
        db.close()
    }
}

export interface WitnessServer {
    url: string
    port: number
    witness: Witness
    close(): Promise<void>
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
    const b = Buffer.from(JSON.stringify(body))
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": b.length, Connection: "close" })
    res.end(b)
}

/**
 * The witness over HTTP: POST /v1/cosign (bearer token: only the ingest server posts), GET
 * /v1/key, GET /v1/log/:devid (anyone: a witness log is public, signed evidence).
 */
export async function startWitnessServer(o: {
    dbPath: string
    keyPath: string
    token: string
    host?: string
    port?: number
    log?: (line: object) => void
    now?: () => number
}): Promise<WitnessServer> {
    const db = openWitnessDb(o.dbPath)
    const witness = new Witness(db, loadOrCreateKey(o.keyPath), o.now)
    const log = o.log ?? ((l: object) => process.stdout.write(JSON.stringify(l) + "\n"))
    const tokenHash = createHash("sha256").update(o.token).digest()
    const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 60_000 }, (req, res) => {
        const path = (req.url ?? "").split("?")[0]
        const t = new Date().toISOString()
        if (req.method === "GET" && path === "/v1/key")
            return reply(res, 200, { publicKey: witness.publicKey.toString("hex"), witness: witness.id })
        const m = /^\/v1\/log\/([0-9a-f]{16})$/.exec(path)
        if (req.method === "GET" && m) return reply(res, 200, witness.log(m[1]))
        if (path !== "/v1/cosign") return reply(res, 404, { status: "not found" })
        if (req.method !== "POST") return reply(res, 405, { status: "use POST" })
        const auth = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")
        if (!auth || !createHash("sha256").update(auth[1]).digest().equals(tokenHash)) {
            req.resume()
            return reply(res, 401, { status: "not authorized" })
        }
        const chunks: Buffer[] = []
        let size = 0
        req.on("data", (c: Buffer) => {
            size += c.length
            if (size > MAX_COSIGN_BODY) req.destroy()
            else chunks.push(c)
        })
        req.on("end", () => {
            let out: CosignResult
            try {
                out = witness.cosign(JSON.parse(Buffer.concat(chunks).toString("utf8")))
            } catch (e) {
                out = { status: "bad-request", reason: e instanceof SyntaxError ? "body is not JSON" : (e as Error).message }
            }
            const status = out.status === "cosigned" ? 200 : out.status === "refused" ? 409 : 400
            log({
                t,
                status,
                cosign: out.status,
                devid: "devid" in out ? out.devid : undefined,
                seq: "seq" in out ? out.seq : undefined,
                reason: "reason" in out ? out.reason : undefined,
            })
            reply(res, status, out)
        })
    })
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen(o.port ?? 0, o.host ?? "127.0.0.1", () => resolve())
    })
    const port = (server.address() as AddressInfo).port
    return {
        url: `http://${o.host ?? "127.0.0.1"}:${port}`,
        port,
        witness,
        close: () =>
            new Promise<void>(resolve => {
                server.close(() => {
                    db.close()
                    resolve()
                })
                server.closeAllConnections()
            }),
    }
}
