// `coldtrace ingest` as a child process (a real server process, stopped with real signals), for the
// multi-node tests and the bench. Its JSON log lines are collected; the first, "listening", gives
// its URL.
import { spawn, type ChildProcess } from "node:child_process"
import path from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../bin/coldtrace.js")

export interface IngestNode {
    url: string
    pid: number
    proc: ChildProcess
    /** every JSON line the process wrote to stdout */
    lines: Record<string, unknown>[]
    /** the exit code (null after a signal), once it exits */
    exited: Promise<number | null>
    /** resolves with the first line (already written or to come) that matches */
    waitFor(match: (line: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>
    /** sends the signal and waits for the exit */
    stop(signal?: NodeJS.Signals): Promise<number | null>
    stderr(): string
}

export async function startIngestNode(args: string[], o: { env?: NodeJS.ProcessEnv; startMs?: number } = {}): Promise<IngestNode> {
    // a free port unless the caller names one (an option given twice is refused)
    const listen = args.some(a => a === "--listen" || a.startsWith("--listen=")) ? [] : ["--listen", "127.0.0.1:0"]
    return startNode("ingest", [...listen, ...args], o)
}

/** Any `coldtrace` service command as a child process (`ingest`, `witness`): up once it logs "listening". */
export async function startNode(
    command: string,
    args: string[],
    o: { env?: NodeJS.ProcessEnv; startMs?: number } = {},
): Promise<IngestNode> {
    const proc = spawn(process.execPath, [BIN, command, ...args], {
        env: { ...process.env, ...o.env },
        stdio: ["ignore", "pipe", "pipe"],
    })
    const lines: Record<string, unknown>[] = []
    const waiters: { match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = []
    let err = ""
    proc.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-8000)))
    createInterface({ input: proc.stdout! }).on("line", text => {
        let l: Record<string, unknown>
        try {
            l = JSON.parse(text)
        } catch {
            l = { text }
        }
        lines.push(l)
        for (const w of [...waiters])
            if (w.match(l)) {
                waiters.splice(waiters.indexOf(w), 1)
                w.resolve(l)
            }
    })
    const exited = new Promise<number | null>(resolve => proc.once("exit", code => resolve(code)))
    const waitFor = (match: (l: Record<string, unknown>) => boolean, ms = 30_000) =>
        new Promise<Record<string, unknown>>((resolve, reject) => {
            const seen = lines.find(match)
            if (seen) return resolve(seen)
            const timer = setTimeout(() => reject(new Error(`ingest node ${proc.pid}: no matching line within ${ms} ms\n${err}`)), ms)
            waiters.push({
                match,
                resolve: l => {
                    clearTimeout(timer)
                    resolve(l)
                },
            })
            void exited.then(code => {
                clearTimeout(timer)
                reject(new Error(`ingest node ${proc.pid} exited (${code}) before a matching line\n${err}`))
            })
        })
    const ready = await waitFor(l => l.event === "listening" || l.event === "failed", o.startMs ?? 60_000)
    if (ready.event !== "listening") throw new Error(`${command} node failed to start: ${JSON.stringify(ready)}\n${err}`)
    return {
        url: ready.url as string,
        pid: proc.pid!,
        proc,
        lines,
        exited,
        waitFor,
        stop(signal = "SIGTERM") {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
            return exited
        },
        stderr: () => err,
    }
}
