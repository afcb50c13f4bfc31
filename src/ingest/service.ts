// `coldtrace ingest`: the ingest server as a service (docs/ingest.md, deploy/). Options, one JSON
// log line per event on stdout, and a graceful stop on SIGTERM or SIGINT: no new connections,
// requests in progress finish (a batch is stored whole or not at all), then the store closes.
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import { UsageError, runCommand, type Values } from "../cli/args.js"
import { INGEST_SPEC } from "../cli/commands.js"
import { startIngestServer } from "./server.js"
import { describeDb, isPostgresUrl, openStore } from "./store/open.js"

function parseListen(v: string): { host: string; port: number } {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(v)
    if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen ${JSON.stringify(v)}: expected HOST:PORT`)
    return { host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) }
}

function positiveInt(v: string | undefined, name: string): number | undefined {
    if (v === undefined) return undefined
    if (!/^\d{1,7}$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} must be a positive integer`)
    return Number(v)
}

function readFile(file: string, what: string): string {
    try {
        return readFileSync(file, "utf8")
    } catch (e) {
        throw new UsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
}

function adminToken(file: string | undefined): string | null {
    const token = file ? readFile(file, "admin token file").trim() : (process.env.COLDTRACE_ADMIN_TOKEN ?? "").trim()
    if (!token) return null
    if (token.length < 32 || /\s/.test(token)) throw new UsageError("the admin token must be at least 32 characters, no spaces")
    return token
}

const line = (o: object) => process.stdout.write(JSON.stringify({ t: new Date().toISOString(), ...o }) + "\n")

export async function ingestCommand(args: string[]): Promise<number> {
    return runCommand(INGEST_SPEC, args, serve)
}

/** Options checked (a UsageError before anything starts), then the server until SIGTERM or SIGINT. */
async function serve(v: Values<typeof INGEST_SPEC>): Promise<number> {
    const listen = parseListen(v.listen)
    if (!v["tls-cert"] !== !v["tls-key"]) throw new UsageError("--tls-cert and --tls-key go together")
    let tls: { cert: string; key: string } | undefined
    if (v["tls-cert"] && v["tls-key"]) tls = { cert: readFile(v["tls-cert"], "certificate"), key: readFile(v["tls-key"], "key") }
    const token = adminToken(v["admin-token-file"])
    const maxConnections = positiveInt(v["max-connections"], "max-connections")
    const poolSize = positiveInt(v.pool, "pool")
    if (poolSize && !isPostgresUrl(v.db)) throw new UsageError("--pool goes with a PostgreSQL --db")
    let witness: { url: string; token: string } | undefined
    if (v.witness) {
        if (!/^https?:\/\/[^\s/]+$/.test(v.witness)) throw new UsageError("--witness must be http(s)://host:port")
        const t = v["witness-token-file"]
            ? readFile(v["witness-token-file"], "witness token file").trim()
            : (process.env.COLDTRACE_WITNESS_TOKEN ?? "").trim()
        if (!t) throw new UsageError("--witness needs --witness-token-file (or COLDTRACE_WITNESS_TOKEN)")
        witness = { url: v.witness, token: t }
    } else if (v["witness-token-file"]) throw new UsageError("--witness-token-file goes with --witness")

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
