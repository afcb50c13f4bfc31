// `coldtrace witness`: the checkpoint witness as its own process (docs/witness.md): its own key
// file, its own SQLite file, an HTTP endpoint the ingest server posts checkpoints to. One JSON line
// per request and event on stdout; SIGTERM or SIGINT stops it.
import { readFileSync } from "node:fs"
import { UsageError, runCommand, type Values } from "../cli/args.js"
import { WITNESS_SPEC } from "../cli/commands.js"
import { startWitnessServer } from "./witness.js"

export async function witnessCommand(args: string[]): Promise<number> {
    return runCommand(WITNESS_SPEC, args, serve)
}

/** Options checked (a UsageError before anything starts), then the witness until SIGTERM or SIGINT. */
async function serve(v: Values<typeof WITNESS_SPEC>): Promise<number> {
    const m = /^([^:\s]+):(\d{1,5})$/.exec(v.listen)
    if (!m) throw new UsageError(`--listen ${JSON.stringify(v.listen)}: expected HOST:PORT`)
    let token: string
    try {
        token = readFileSync(v["token-file"], "utf8").trim()
    } catch (e) {
        throw new UsageError((e as Error).message)
    }
    if (token.length < 32 || /\s/.test(token)) throw new UsageError("the token must be at least 32 characters, no spaces")
    const line = (o: object) => process.stdout.write(JSON.stringify({ t: new Date().toISOString(), ...o }) + "\n")
    const srv = await startWitnessServer({ dbPath: v.db, keyPath: v.key, token, host: m[1], port: Number(m[2]), log: line })
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
