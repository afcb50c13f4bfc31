import { spawn, ChildProcess, execFile } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { createHash } from "node:crypto"
import { createRequire } from "node:module"
import path from "node:path"
import { EventEmitter } from "node:events"
import { fileURLToPath } from "node:url"

const require = createRequire(import.meta.url)
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
export const DEVS_DIR = path.join(ROOT, "devs")
export const DEVS_CLI = path.join(path.dirname(require.resolve("@devicescript/cli/package.json")), "built/devicescript-cli.cjs")

export interface BuildResult {
    bytecode: string
    bytes: number
    ms: number
}

/**
 * `devs build` of one firmware entry point, copied to `outFile`. devs always writes the same
 * .devicescript/bin path and other builds (tests, other entry points) may run meanwhile, so the
 * output is taken only if its debug info names our entry and its hash matches; else it builds again.
 * Rejects with the compiler's diagnostics on failure.
 */
export async function buildFirmware(entry: string, outFile: string, extraArgs: string[] = []): Promise<BuildResult> {
    const t0 = performance.now()
    const binDir = path.join(DEVS_DIR, ".devicescript/bin")
    for (let attempt = 1; ; attempt++) {
        await new Promise<void>((resolve, reject) =>
            execFile(
                process.execPath,
                [DEVS_CLI, "build", entry, ...extraArgs],
                { cwd: DEVS_DIR, maxBuffer: 16 << 20 },
                (err, stdout, stderr) => (err ? reject(new Error(`devs build ${entry} failed:\n${stdout}${stderr}`)) : resolve()),
            ),
        )
        try {
            const bytes = readFileSync(path.join(binDir, "bytecode.devs"))
            const dbg = JSON.parse(readFileSync(path.join(binDir, "bytecode-dbg.json"), "utf8"))
            const sha = createHash("sha256").update(bytes).digest("hex")
            if (dbg.sources?.[0]?.path === entry && dbg.binarySHA256 === sha) {
                mkdirSync(path.dirname(outFile), { recursive: true })
                writeFileSync(outFile, bytes)
                return { bytecode: outFile, bytes: bytes.length, ms: performance.now() - t0 }
            }
        } catch {
            /* half-written by a concurrent build: build again */
        }
        if (attempt >= 5) throw new Error(`devs build ${entry}: output kept being overwritten by concurrent builds`)
    }
}

const ANSI = /\x1b\[[0-9;]*m/g

/**
 * One simulated device: the DeviceScript VM running our bytecode, connected to the hub on 8082,
 * its flash in `<dir>/.devicescript/flash`. `powerCut()` is a SIGKILL: nothing gets to clean up.
 * Emits "line" for every console line (without colours and the "WASM> " prefix) and "exit".
 * `env` is merged over process.env for the VM's process (e.g. NODE_EXTRA_CA_CERTS, so the VM's
 * TLS, which is Node's, trusts a test CA; Node reads it only at process start).
 */
export class VmProcess extends EventEmitter {
    private proc?: ChildProcess
    boots = 0

    constructor(
        readonly dir: string,
        readonly bytecode: string,
        readonly env: NodeJS.ProcessEnv = {},
    ) {
        super()
        mkdirSync(dir, { recursive: true })
    }

    get running() {
        return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null
    }

    start() {
        if (this.running) throw new Error("VM already running")
        const p = spawn(process.execPath, [DEVS_CLI, "run", this.bytecode, "--tcp"], {
            cwd: this.dir,
            env: { ...process.env, ...this.env },
            stdio: ["ignore", "pipe", "pipe"],
        })
        this.proc = p
        this.boots++
        let buf = ""
        const onData = (d: Buffer) => {
            buf += d.toString("utf8")
            let i: number
            while ((i = buf.indexOf("\n")) >= 0) {
                const line = buf
                    .slice(0, i)
                    .replace(ANSI, "")
                    .replace(/^WASM> /, "")
                    .trimEnd()
                buf = buf.slice(i + 1)
                this.emit("line", line)
            }
        }
        p.stdout!.on("data", onData)
        p.stderr!.on("data", onData)
        p.on("exit", (code, signal) => this.emit("exit", code, signal))
    }

    /** SIGKILL, like pulling the battery; resolves once the process is gone. */
    async powerCut(): Promise<void> {
        const p = this.proc
        if (!p || !this.running) return
        const gone = new Promise<void>(resolve => p.once("exit", () => resolve()))
        p.kill("SIGKILL")
        await gone
    }
}
