// `coldtrace witness`: the checkpoint witness as its own process (docs/witness.md): its own key
// file, its own SQLite file, an HTTP endpoint the ingest server posts checkpoints to. One JSON line
// per request and event on stdout; SIGTERM or SIGINT stops it.
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { startWitnessServer } from "./witness.js"

export const WITNESS_USAGE = `coldtrace witness --db FILE --key FILE --token-file FILE [--listen HOST:PORT]
        Run the checkpoint witness (docs/witness.md): the ingest server posts each checkpoint to
        POST /v1/cosign (Authorization: Bearer <token>); the witness cosigns it with its Ed25519 key
        or refuses one that contradicts what it cosigned for that device. GET /v1/key gives its
        public key, GET /v1/log/DEVID a device's witness log (for coldtrace verify --witness).
        --db          the witness's own SQLite file (created mode 0600)
        --key         its Ed25519 private key, PEM (created mode 0600 when missing)
        --token-file  the bearer token the ingest server must present (at least 32 characters)
        --listen      address and port (default 127.0.0.1:8090; port 0 picks a free one)`

export async function witnessCommand(args: string[]): Promise<number> {
    let v
    try {
        v = parseArgs({
            args,
            options: {
                db: { type: "string" },
                key: { type: "string" },
                "token-file": { type: "string" },
                listen: { type: "string", default: "127.0.0.1:8090" },
                help: { type: "boolean", short: "h" },
            },
            strict: true,
        }).values
    } catch (e) {
        console.error(`coldtrace witness: ${(e as Error).message}\n(coldtrace witness --help for usage)`)
        return 2
    }
    if (v.help) {
        console.log(WITNESS_USAGE)
        return 0
    }
    const m = /^([^:\s]+):(\d{1,5})$/.exec(v.listen ?? "")
    let token = ""
    try {
        if (!v.db || !v.key || !v["token-file"]) throw new Error("--db, --key and --token-file are required")
        if (!m) throw new Error(`--listen ${JSON.stringify(v.listen)}: expected HOST:PORT`)
        token = readFileSync(v["token-file"], "utf8").trim()
        if (token.length < 32 || /\s/.test(token)) throw new Error("the token must be at least 32 characters, no spaces")
    } catch (e) {
        console.error(`coldtrace witness: ${(e as Error).message}\n(coldtrace witness --help for usage)`)
        return 2
    }
    const line = (o: object) => process.stdout.write(JSON.stringify({ t: new Date().toISOString(), ...o }) + "\n")
    const srv = await startWitnessServer({ dbPath: v.db!, keyPath: v.key!, token, host: m![1], port: Number(m![2]), log: line })
    line({ event: "listening", url: srv.url, witness: srv.witness.id, publicKey: srv.witness.publicKey.toString("hex"), pid: process.pid })
    return new Promise<number>(resolve => {
        const stop = (signal: NodeJS.Signals) => {
            line({ event: "stopping", signal })
            void srv.close().then(() => {
                line({ event: "stopped" })
                resolve(0)
            })
        }
        process.once("SIGTERM", stop)
        process.once("SIGINT", stop)
    })
}
