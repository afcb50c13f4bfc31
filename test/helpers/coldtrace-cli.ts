// `coldtrace ...` as a person types it: a child process of bin/coldtrace.js, its exit code and output.
import { execFile } from "node:child_process"
import path from "node:path"
import { promisify } from "node:util"

export const ROOT = path.join(import.meta.dirname, "../..")
export const BIN = path.join(ROOT, "bin/coldtrace.js")
const run = promisify(execFile)

export interface CliResult {
    code: number
    out: string
    err: string
}

export async function coldtrace(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
    try {
        const r = await run(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 90_000, env: { ...process.env, ...env } })
        return { code: 0, out: r.stdout, err: r.stderr }
    } catch (e) {
        const x = e as { code: number; stdout: string; stderr: string }
        return { code: x.code, out: x.stdout, err: x.stderr }
    }
}
