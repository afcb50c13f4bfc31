import path from "node:path"
import { spawn } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { buildFirmware, DEVS_CLI } from "../src/sim/vm.js"

const ANSI = /\x1b\[[0-9;]*m/g

export interface TestVmRun {
    /** console lines starting with "cb:", without the prefix */
    lines: string[]
    wallMs: number
}

/**
 * Build a DeviceScript bench program (devs/bench/<file>.ts) and run it in the VM in test mode
 * (`devs run X.devs --test --test-self-exit`: no ports, its own fresh settings store). buildFirmware
 * guards against concurrent builds overwriting devs' fixed output path.
 */
export async function runBenchProgram(
    entry: string,
    outDir: string,
    timeoutMs: number,
    env: Record<string, string> = {},
): Promise<TestVmRun> {
    return await runTestVm(entry, await buildBenchProgram(entry, outDir), outDir, timeoutMs, env)
}

export async function buildBenchProgram(entry: string, outDir: string): Promise<string> {
    mkdirSync(outDir, { recursive: true })
    const devs = path.join(outDir, path.basename(entry).replace(/\.ts$/, ".devs"))
    await buildFirmware(entry, devs)
    return devs
}

export async function runTestVm(
    entry: string,
    devs: string,
    outDir: string,
    timeoutMs: number,
    env: Record<string, string> = {},
): Promise<TestVmRun> {
    const t0 = performance.now()
    return await new Promise<TestVmRun>((resolve, reject) => {
        const child = spawn(
            process.execPath,
            [DEVS_CLI, "--no-colors", "run", devs, "--test", "--test-self-exit", "--test-timeout", String(timeoutMs)],
            {
                cwd: outDir,
                env: { ...process.env, ...env, NO_COLOR: "1", FORCE_COLOR: "0" },
                stdio: ["ignore", "pipe", "pipe"],
            },
        )
        let out = ""
        child.stdout.on("data", d => (out += d))
        child.stderr.on("data", d => (out += d))
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 20_000)
        child.on("error", e => {
            clearTimeout(timer)
            reject(e)
        })
        child.on("close", code => {
            clearTimeout(timer)
            const all = out
                .replace(ANSI, "")
                .split("\n")
                .map(l => l.replace(/^WASM> /, "").trimEnd())
            writeFileSync(path.join(outDir, "console.txt"), all.join("\n"))
            if (code !== 0) {
                reject(
                    new Error(
                        `${entry} in the test VM exited ${code}:\n${all
                            .filter(l => !l.startsWith("cb:bh"))
                            .slice(-30)
                            .join("\n")}`,
                    ),
                )
                return
            }
            resolve({ lines: all.filter(l => l.startsWith("cb:")).map(l => l.slice(3)), wallMs: performance.now() - t0 })
        })
    })
}

/** "key=value key=value" fields of one line (after its leading tag) */
export function fields(line: string): Record<string, string> {
    const out: Record<string, string> = {}
    for (const tok of line.split(" ")) {
        const i = tok.indexOf("=")
        if (i > 0) out[tok.slice(0, i)] = tok.slice(i + 1)
    }
    return out
}

export function num(f: Record<string, string>, key: string): number {
    const v = Number(f[key])
    if (!(key in f) || !Number.isFinite(v)) throw new Error(`bench output: no number ${key} in ${JSON.stringify(f)}`)
    return v
}
