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
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { DEVS_DIR, runSuite, parseSummary } from "./helpers/devs-suite.js"
const TIMEOUT = 60_000
const VM_TIMEOUT = 45_000
// the long run of the log store takes about 25 s of wall time per profile
const SLOW: Record<string, number> = { "logstore-longrun.test.ts": 240_000 }

const files = readdirSync(join(DEVS_DIR, "test"))
    .filter(f => f.endsWith(".test.ts"))
    .sort()

describe("DeviceScript unit tests (devs/test, in the VM)", () => {
    test("there are suites to run", () => {
        expect(files).toContain("format.test.ts")
    })

    for (const f of files) {
        test(
            f,
            async () => {
                const wall = SLOW[f] ?? TIMEOUT
                const r = await runSuite(`test/${f}`, wall === TIMEOUT ? VM_TIMEOUT : wall * 4, wall)
                const where = `devs/test/${f}: exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n--- VM output ---\n${r.out}`
                expect(r.code, where).toBe(0)
                const s = parseSummary(r.out)
                expect(s, `no "tests: N, pass: N, error: 0" line\n${where}`).toBeDefined()
                expect(s!.total, where).toBeGreaterThan(0)
                expect(s!.error, where).toBe(0)
                expect(s!.pass, where).toBe(s!.total)
                expect(r.out, where).toMatch(/test OK/)
            },
            SLOW[f] ?? TIMEOUT,
        )
    }
})
