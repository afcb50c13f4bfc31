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
/** the VM's virtual clock, loaded into its process (docs/simulator.md, "Time") */
export const VM_CLOCK = path.join(ROOT, "src/sim/vm/vm-clock.cjs")

export interface BuildResult {
    bytecode: string
    bytes: number
    ms: number
    /** where the program's function code ends: the runtime's verifier refuses 0x10000 and beyond (docs/devicescript-traps.md) */
    codeEnd: number
}

/** The 64 KB the runtime's verifier allows a program's function code (check 1051). */
export const CODE_LIMIT = 0x10000

/** The end of the function code from the compiler's debug info (functions' start and size). */
export function codeEndOf(dbg: { functions?: { startpc?: number; size?: number }[] }): number {
    let end = 0
    for (const f of dbg.functions ?? []) end = Math.max(end, (f.startpc ?? 0) + (f.size ?? 0))
    return end
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
                return { bytecode: outFile, bytes: bytes.length, ms: performance.now() - t0, codeEnd: codeEndOf(dbg) }
            }
        } catch {
            /* half-written by a concurrent build: build again */
        }
        if (attempt >= 5) throw new Error(`devs build ${entry}: output kept being overwritten by concurrent builds`)
    }
}

const ANSI = /\x1b\[[0-9;]*m/g
const STAMP = /^@(\d+) /

export interface VmStart {
    /** world UTC ms at power-on: the VM's clock starts here */
    utc: number
    /**
     * `free`: the VM's clock follows the wall clock (a factory-new logger being provisioned);
     * `alone`: no world, the clock goes straight to the VM's next timer (a program run on its own)
     */
    mode: "free" | "lockstep" | "alone"
}

/**
 * One simulated device: the DeviceScript VM running our bytecode, connected to the hub on 8082,
 * its flash in `<dir>/.devicescript/flash`, its clock the world's (src/sim/vm/vm-clock.cjs).
 * `powerCut()` is a SIGKILL: nothing gets to clean up. Emits "line" (text without colours and the
 * "WASM> " prefix, world UTC ms when it was printed) for every console line, and "exit" (code,
 * signal, and which start it was: `boots` at that start).
 * `env` is merged over process.env for the VM's process (e.g. NODE_EXTRA_CA_CERTS, so the VM's
 * TLS, which is Node's, trusts a test CA; Node reads it only at process start).
 */
export class VmProcess extends EventEmitter {
    private proc?: ChildProcess
    boots = 0
    /** world UTC at the current process's power-on (its millis() 0) */
    origin = 0

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

    start(at: VmStart) {
        if (this.running) throw new Error("VM already running")
        const verbose = process.env.COLDTRACE_VM_VERBOSE ? ["-v"] : []
        const p = spawn(process.execPath, ["--require", VM_CLOCK, DEVS_CLI, ...verbose, "run", this.bytecode, "--tcp"], {
            cwd: this.dir,
            env: { ...process.env, ...this.env, COLDTRACE_VM_UTC: String(at.utc), COLDTRACE_VM_MODE: at.mode },
            stdio: ["ignore", "pipe", "pipe"],
        })
        this.proc = p
        this.boots++
        const gen = this.boots
        this.origin = at.utc
        let last = at.utc
        let buf = ""
        const onData = (d: Buffer) => {
            buf += d.toString("utf8")
            let i: number
            while ((i = buf.indexOf("\n")) >= 0) {
                let line = buf.slice(0, i).replace(ANSI, "").trimEnd()
                buf = buf.slice(i + 1)
                const m = STAMP.exec(line)
                if (m) {
                    last = Number(m[1])
                    line = line.slice(m[0].length)
                }
                this.emit("line", line.replace(/^WASM> /, ""), last)
            }
        }
        p.stdout!.on("data", onData)
        p.stderr!.on("data", onData)
        p.on("exit", (code, signal) => this.emit("exit", code, signal, gen))
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
