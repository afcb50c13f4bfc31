import path from "node:path"
import { runBenchProgram, buildBenchProgram, runTestVm, fields, num } from "./devsrun.js"
import type { VmBatch } from "./uplink.js"

/**
 * Issue 5 figures: parses devs/bench/logbench.ts (real LogStore + RAM model of it, three profiles,
 * the firmware's batches) and devs/bench/tomb-*.ts (what a deleted settings key costs for good).
 */

export const PROFILES = ["stable", "fridge", "excursion"] as const
export type ProfileName = (typeof PROFILES)[number]

export interface ProfileOut {
    name: ProfileName
    month: Record<string, number>
    cap: Record<string, number>
    maxBlocks: Record<string, number>
    real: Record<string, number>
    appendMs: number[]
    vmMs: number
}

export interface LogBenchOut {
    values: { key: string; len: number }[]
    profiles: Map<ProfileName, ProfileOut>
    batches: VmBatch[]
    uplinkBatches: Map<number, number>
    /** port the firmware's client found the capture server on (0: none) */
    capturePort: number
    /** per upload period: whether the HTTPS request went through */
    capturedTls: Map<number, string>
    wallMs: number
}

const toNums = (f: Record<string, string>) => Object.fromEntries(Object.keys(f).map(k => [k, num(f, k)]))

/** `env`: for the VM process (NODE_EXTRA_CA_CERTS: the capture server's certificate) */
export async function runLogBench(outDir: string, env: Record<string, string>): Promise<LogBenchOut> {
    const run = await runBenchProgram("bench/logbench.ts", path.join(outDir, "logbench"), 1_500_000, env)
    const out: LogBenchOut = {
        values: [],
        profiles: new Map(),
        batches: [],
        uplinkBatches: new Map(),
        capturePort: 0,
        capturedTls: new Map(),
        wallMs: run.wallMs,
    }
    const prof = (name: string): ProfileOut => {
        if (!PROFILES.includes(name as ProfileName)) throw new Error(`bench output: unknown profile ${name}`)
        let p = out.profiles.get(name as ProfileName)
        if (!p)
            out.profiles.set(
                name as ProfileName,
                (p = { name: name as ProfileName, month: {}, cap: {}, maxBlocks: {}, real: {}, appendMs: [], vmMs: NaN }),
            )
        return p
    }
    let hex = ""
    let done = false
    for (const line of run.lines) {
        const tag = line.split(" ")[0]
        const rest = line.slice(tag.length + 1)
        const f = fields(rest)
        switch (tag) {
            case "value":
                out.values.push({ key: f.key, len: num(f, "len") })
                break
            case "bh":
                hex += rest.trim()
                break
            case "be":
                out.batches.push({ period: num(f, "period"), epoch: num(f, "epoch"), n: num(f, "n"), bytes: Buffer.from(hex, "hex") })
                hex = ""
                break
            case "uplink":
                out.uplinkBatches.set(num(f, "period"), num(f, "batches"))
                break
            case "ms": {
                const p = prof(f.profile)
                p.appendMs.push(
                    ...rest
                        .slice(rest.indexOf(" ") + 1)
                        .split(",")
                        .map(Number),
                )
                break
            }
            case "real":
                prof(f.profile).real = toNums({ ...f, profile: "0" })
                break
            case "month":
                prof(f.profile).month = toNums({ ...f, profile: "0" })
                break
            case "cap":
                prof(f.profile).cap = toNums({ ...f, profile: "0" })
                break
            case "maxblocks":
                prof(f.profile).maxBlocks = toNums({ ...f, profile: "0" })
                break
            case "profile":
                prof(f.name).vmMs = num(f, "vm_ms")
                break
            case "capture":
                out.capturePort = num(f, "port")
                break
            case "captured":
                out.capturedTls.set(num(f, "period"), f.tls)
                break
            case "done":
                done = true
                break
        }
    }
    if (!done) throw new Error(`logbench did not finish (console in ${path.join(outDir, "logbench", "console.txt")})`)
    for (const p of PROFILES) {
        const o = out.profiles.get(p)
        if (!o || !o.month.samples || !o.cap.cap_samples || o.real.checked !== o.real.appends || !o.appendMs.length)
            throw new Error(`logbench: incomplete output for ${p}`)
    }
    return out
}

export interface TombOut {
    /** bytes a deleted key keeps in the store for good, measured (range from the fill granularity) */
    perDelete: number
    lo: number
    hi: number
    deletes: number
    /** bytes the VM's fresh store takes before it refuses a write */
    freshFree: number
    wallMs: number
}

/**
 * Two fresh test VMs (run side by side: they mostly wait on the store): one only fills the store,
 * the other first sets and deletes 60 distinct keys. Free space is known to 32 bytes
 * (216 per 192-byte value, 32 per 8-byte value), so each delete's cost to within 32/60 bytes.
 */
export async function runTombstones(outDir: string): Promise<TombOut> {
    const t0 = performance.now()
    // build one after the other (devs has one output path), run side by side
    const dir = path.join(outDir, "tomb")
    const baseDevs = await buildBenchProgram("bench/tomb-base.ts", path.join(dir, "base"))
    const delDevs = await buildBenchProgram("bench/tomb-delete.ts", path.join(dir, "delete"))
    const [b, d] = await Promise.all([
        runTestVm("bench/tomb-base.ts", baseDevs, path.join(dir, "base"), 60_000),
        runTestVm("bench/tomb-delete.ts", delDevs, path.join(dir, "delete"), 60_000),
    ])
    const get = (r: { lines: string[] }) => {
        const l = r.lines.find(x => x.startsWith("tomb "))
        if (!l) throw new Error("tombstone probe: no result")
        return fields(l)
    }
    const fb = get(b)
    const fd = get(d)
    const free = (f: Record<string, string>) => 216 * num(f, "big") + 32 * num(f, "small")
    const deletes = num(fd, "deletes")
    const diff = free(fb) - free(fd)
    return {
        perDelete: diff / deletes,
        lo: (diff - 32) / deletes,
        hi: (diff + 32) / deletes,
        deletes,
        freshFree: free(fb),
        wallMs: performance.now() - t0,
    }
}
