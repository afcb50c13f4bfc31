// Running DeviceScript test files in the VM (test mode, virtual clock): devs-unit.test.ts and the soak.
import { spawn } from "node:child_process"
import { join, resolve, dirname } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
export const DEVS_DIR = join(ROOT, "devs")
const CLI = join(ROOT, "node_modules", "@devicescript", "cli", "built", "devicescript-cli.cjs")
const VM_CLOCK = join(ROOT, "src", "sim", "vm", "vm-clock.cjs")

export interface Run {
    code: number | null
    signal: NodeJS.Signals | null
    out: string
}

/** Runs one DeviceScript test file (`rel` to devs/) in the VM; `vmMs`: the VM's own limit (virtual ms). */
export function runSuite(rel: string, vmMs: number, wallMs: number): Promise<Run> {
    return new Promise((resolveRun, reject) => {
        const child = spawn(
            process.execPath,
            ["--require", VM_CLOCK, CLI, "--no-colors", "run", rel, "--test", "--test-self-exit", "--test-timeout", String(vmMs)],
            {
                cwd: DEVS_DIR,
                env: {
                    ...process.env,
                    NO_COLOR: "1",
                    FORCE_COLOR: "0",
                    COLDTRACE_VM_MODE: "alone",
                    COLDTRACE_VM_UTC: String(Date.UTC(2026, 0, 1)),
                },
                stdio: ["ignore", "pipe", "pipe"],
            },
        )
        let out = ""
        child.stdout.on("data", d => (out += d))
        child.stderr.on("data", d => (out += d))
        const timer = setTimeout(() => child.kill("SIGKILL"), wallMs - 5_000)
        child.on("error", e => {
            clearTimeout(timer)
            reject(e)
        })
        child.on("close", (code, signal) => {
            clearTimeout(timer)
            // the WASM console colours its lines even when asked not to
            resolveRun({ code, signal, out: out.replace(/\x1b\[[0-9;]*m/g, "") })
        })
    })
}

/** The @devicescript/test summary line: "tests: N, pass: P, error: E" (the last one printed). */
export function parseSummary(out: string): { total: number; pass: number; error: number } | undefined {
    const all = [...out.matchAll(/tests: (\d+), pass: (\d+), error: (\d+)/g)]
    const m = all[all.length - 1]
    return m ? { total: Number(m[1]), pass: Number(m[2]), error: Number(m[3]) } : undefined
}
