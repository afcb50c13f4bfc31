// `coldtrace ingest`: the ingest server as a service (docs/ingest.md, deploy/). Options, one JSON
// log line per event on stdout, and a graceful stop on SIGTERM or SIGINT: no new connections,
// requests in progress finish (a batch is stored whole or not at all), then the store closes.
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import { parseArgs } from "node:util"
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUTS, startIngestServer } from "./server.js"
import { describeDb, isPostgresUrl, openStore } from "./store/open.js"

export const INGEST_USAGE = `coldtrace ingest [--db DB] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE]
                 [--admin-token-file FILE] [--max-connections N] [--node NAME] [--pool N]
        Run the ingest server (docs/ingest.md): loggers' batches on POST /v1/batch, the read API,
        the admin API, GET /v1/health. One JSON line per request and event on stdout.
        --db                a SQLite file (default ingest.sqlite, created mode 0600) or a PostgreSQL
                            URL (postgres://user@host/db, or ?host=/socket/dir); several servers
                            may share one database
        --listen            address and port (default 127.0.0.1:8080; port 0 picks a free one)
        --tls-cert/--tls-key  PEM files: serve HTTPS (plain HTTP without them)
        --admin-token-file  a file holding the admin API's bearer token (or COLDTRACE_ADMIN_TOKEN);
                            without one the admin API is off
        --max-connections   open connections at once, more are closed at once (default ${DEFAULT_MAX_CONNECTIONS})
        --node              this server's name in logs and health replies (default host name:pid)
        --pool              PostgreSQL connections of this process (default 8)
        --witness URL       post every checkpoint to this witness (coldtrace witness) and store its
                            cosignature; acks never wait for it (docs/witness.md)
        --witness-token-file  the witness's bearer token (or COLDTRACE_WITNESS_TOKEN)
        Timeouts: request head ${DEFAULT_TIMEOUTS.headMs / 1000} s, whole request ${DEFAULT_TIMEOUTS.requestMs / 1000} s, TLS handshake ${DEFAULT_TIMEOUTS.tlsMs / 1000} s.
        SIGTERM or SIGINT: stop taking connections, finish requests in progress, exit 0.`

const OPTIONS = {
    db: { type: "string", default: "ingest.sqlite" },
    listen: { type: "string", default: "127.0.0.1:8080" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "admin-token-file": { type: "string" },
    "max-connections": { type: "string" },
    node: { type: "string" },
    pool: { type: "string" },
    witness: { type: "string" },
    "witness-token-file": { type: "string" },
    help: { type: "boolean", short: "h" },
} as const

export class IngestUsageError extends Error {}

function parseListen(v: string): { host: string; port: number } {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(v)
    if (!m || Number(m[2]) > 65535) throw new IngestUsageError(`--listen ${JSON.stringify(v)}: expected HOST:PORT`)
    return { host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) }
}

function positiveInt(v: string | undefined, name: string): number | undefined {
    if (v === undefined) return undefined
    if (!/^\d{1,7}$/.test(v) || Number(v) < 1) throw new IngestUsageError(`--${name} must be a positive integer`)
    return Number(v)
}

function readFile(file: string, what: string): string {
    try {
        return readFileSync(file, "utf8")
    } catch (e) {
        throw new IngestUsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
}

function adminToken(file: string | undefined): string | null {
    const token = file ? readFile(file, "admin token file").trim() : (process.env.COLDTRACE_ADMIN_TOKEN ?? "").trim()
    if (!token) return null
    if (token.length < 32 || /\s/.test(token)) throw new IngestUsageError("the admin token must be at least 32 characters, no spaces")
    return token
}

const line = (o: object) => process.stdout.write(JSON.stringify({ t: new Date().toISOString(), ...o }) + "\n")

export async function ingestCommand(args: string[]): Promise<number> {
    let v: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; strict: true }>>["values"]
    try {
        v = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values
    } catch (e) {
        console.error(`coldtrace ingest: ${(e as Error).message}\n(coldtrace ingest --help for usage)`)
        return 2
    }
    if (v.help) {
        console.log(INGEST_USAGE)
        return 0
    }
    let listen: { host: string; port: number }
    let tls: { cert: string; key: string } | undefined
    let token: string | null
    let maxConnections: number | undefined
    let poolSize: number | undefined
    let witness: { url: string; token: string } | undefined
    try {
        listen = parseListen(v.listen)
        if (!v["tls-cert"] !== !v["tls-key"]) throw new IngestUsageError("--tls-cert and --tls-key go together")
        if (v["tls-cert"] && v["tls-key"]) tls = { cert: readFile(v["tls-cert"], "certificate"), key: readFile(v["tls-key"], "key") }
        token = adminToken(v["admin-token-file"])
        maxConnections = positiveInt(v["max-connections"], "max-connections")
        poolSize = positiveInt(v.pool, "pool")
        if (poolSize && !isPostgresUrl(v.db)) throw new IngestUsageError("--pool goes with a PostgreSQL --db")
        if (v.witness) {
            if (!/^https?:\/\/[^\s/]+$/.test(v.witness)) throw new IngestUsageError("--witness must be http(s)://host:port")
            const t = v["witness-token-file"]
                ? readFile(v["witness-token-file"], "witness token file").trim()
                : (process.env.COLDTRACE_WITNESS_TOKEN ?? "").trim()
            if (!t) throw new IngestUsageError("--witness needs --witness-token-file (or COLDTRACE_WITNESS_TOKEN)")
            witness = { url: v.witness, token: t }
        } else if (v["witness-token-file"]) throw new IngestUsageError("--witness-token-file goes with --witness")
    } catch (e) {
        if (!(e instanceof IngestUsageError)) throw e
        console.error(`coldtrace ingest: ${e.message}\n(coldtrace ingest --help for usage)`)
        return 2
    }

    const db = describeDb(v.db)
    let store
    try {
        store = await openStore(v.db, { poolSize })
    } catch (e) {
        line({ event: "failed", db, detail: (e as Error).message.split("\n")[0] })
        return 1
    }
    const srv = await startIngestServer({
        store,
        host: listen.host,
        port: listen.port,
        tls,
        adminToken: token,
        maxConnections,
        node: v.node ?? `${hostname()}:${process.pid}`,
        witness,
    }).catch(async (e: Error) => {
        await store.close()
        line({ event: "failed", db, detail: e.message.split("\n")[0] })
        return null
    })
    if (!srv) return 1
    const node = v.node ?? `${hostname()}:${process.pid}`
    line({ event: "listening", node, url: srv.url, db, backend: store.backend, admin: token !== null, pid: process.pid })

    return new Promise<number>(resolve => {
        let stopping = false
        const stop = (signal: NodeJS.Signals) => {
            if (stopping) {
                line({ event: "stop forced", node, signal })
                process.exit(1)
            }
            stopping = true
            const t0 = Date.now()
            line({ event: "stopping", node, signal })
            srv.close()
                .then(() => {
                    line({ event: "stopped", node, ms: Date.now() - t0 })
                    resolve(0)
                })
                .catch((e: Error) => {
                    line({ event: "stop failed", node, detail: e.message.split("\n")[0] })
                    resolve(1)
                })
        }
        process.on("SIGTERM", stop)
        process.on("SIGINT", stop)
    })
}
