// Runs every DeviceScript unit test suite (devs/test/*.test.ts, @devicescript/test) in the
// DeviceScript VM in test mode, one vitest test per file, one file at a time. The VM's clock is
// virtual (src/sim/vm/vm-clock.cjs, mode `alone`): it goes straight to the VM's next timer, so a
// suite's waits (the settings store's replies, the runtime's packet throttle, conversion polls)
// cost no wall time and the suites run the same on a loaded machine.
//
// Test mode (`devs run X --test --test-self-exit`) opens no ports, so it does not disturb a simulator
// run on 8081/8082. Without --test-self-exit a failing suite exits 0, so it is always passed.
// The VM's own whole-run timeout defaults to 5 s, which flash tests barely fit (the first settings
// write in a fresh test VM costs ~0.9 s, every write after ~20 ms): --test-timeout raises it, and it
// stays below the vitest timeout so a hung suite is reported by the VM ("timeout") first.
import { describe, test, expect } from "vitest"
import { spawn } from "node:child_process"
import { readdirSync } from "node:fs"
import { join, resolve, dirname } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const DEVS_DIR = join(ROOT, "devs")
const CLI = join(ROOT, "node_modules", "@devicescript", "cli", "built", "devicescript-cli.cjs")
const VM_CLOCK = join(ROOT, "src", "sim", "vm", "vm-clock.cjs")
const TIMEOUT = 60_000
const VM_TIMEOUT = 45_000

const files = readdirSync(join(DEVS_DIR, "test"))
    .filter(f => f.endsWith(".test.ts"))
    .sort()

interface Run {
    code: number | null
    signal: NodeJS.Signals | null
    out: string
}

function runSuite(rel: string): Promise<Run> {
    return new Promise((resolveRun, reject) => {
        const child = spawn(
            process.execPath,
            ["--require", VM_CLOCK, CLI, "--no-colors", "run", rel, "--test", "--test-self-exit", "--test-timeout", String(VM_TIMEOUT)],
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
        const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT - 5_000)
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
function parseSummary(out: string): { total: number; pass: number; error: number } | undefined {
    const all = [...out.matchAll(/tests: (\d+), pass: (\d+), error: (\d+)/g)]
    const m = all[all.length - 1]
    return m ? { total: Number(m[1]), pass: Number(m[2]), error: Number(m[3]) } : undefined
}

describe("DeviceScript unit tests (devs/test, in the VM)", () => {
    test("there are suites to run", () => {
        expect(files).toContain("format.test.ts")
    })

    for (const f of files) {
        test(
            f,
            async () => {
                const r = await runSuite(`test/${f}`)
                const where = `devs/test/${f}: exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n--- VM output ---\n${r.out}`
                expect(r.code, where).toBe(0)
                const s = parseSummary(r.out)
                expect(s, `no "tests: N, pass: N, error: 0" line\n${where}`).toBeDefined()
                expect(s!.total, where).toBeGreaterThan(0)
                expect(s!.error, where).toBe(0)
                expect(s!.pass, where).toBe(s!.total)
                expect(r.out, where).toMatch(/test OK/)
            },
            TIMEOUT,
        )
    }
})
