import { LongRun, LongRunResult, PROFILES } from "../test/longrun"

/**
 * The log store's long runs as a program, not a test (issue 11): `devs run --test` turns on the
 * runtime's GC stress, which makes each append ~5x slower; the harness (src/sim/devs-program.ts)
 * runs this without it and reads the settings store out of the flash file at every checkpoint.
 * Each profile: `days` of 5-minute samples, hourly uploads and acks, an outage of `outageDays` every
 * `outageEvery` days (the store fills: evictions), a power cut every 3 days, `maxBlocks` blocks held.
 * Prints `ct:longrun-day` every `every` days, `ct:longrun` per profile, `ct:soak-done` when all held.
 */
export class LongRunPlan {
    days = 400
    every = 25
    outageEvery = 10
    outageDays = 2
    maxBlocks = 6
}

export async function runLongRuns(plan: LongRunPlan) {
    let passed = 0
    for (let i = 0; i < PROFILES.length; i++) if (await runProfile(i, plan)) passed++
    console.log(`ct:soak-done passed=${passed} profiles=${PROFILES.length}`)
}

async function runProfile(i: number, plan: LongRunPlan): Promise<boolean> {
    const profile = PROFILES[i]
    const devid = Buffer.from("c01d7ace00000000", "hex")
    devid.setAt(4, "u32", 0x6000 + i)
    const lr = new LongRun(devid, profile, plan.maxBlocks)
    const r = await lr.run(plan.days, plan.outageEvery, plan.outageDays, 3, d => checkpoint(profile, d, plan.every, lr.r))
    const ok = r.verified + r.evicted === r.appended && r.maxBlocksSeen <= plan.maxBlocks + 1
    const a = `ct:longrun profile=${profile} days=${plan.days} appended=${r.appended} verified=${r.verified}`
    const b = ` evicted=${r.evicted} evictions=${r.evictions} reopens=${r.reopens}`
    console.log(a + b + ` maxblocks=${r.maxBlocksSeen} ok=${ok ? 1 : 0}`)
    return ok
}

function checkpoint(profile: string, d: number, every: number, r: LongRunResult) {
    if ((d + 1) % every !== 0) return
    console.log(`ct:longrun-day profile=${profile} day=${d + 1} appended=${r.appended} evicted=${r.evicted}`)
}

/**
 * Offline for `days` from the start (a dead zone, a flight, a warehouse): `maxBlocks` blocks held,
 * the oldest evicted into summaries as the store fills. At the end the network comes back and
 * everything still held goes up: how many days it holds in full detail and how many more only as
 * evicted summaries (issue 11 item 4). Prints `ct:offline` per profile, `ct:soak-done` at the end.
 */
export async function runOffline(days: number, maxBlocks: number) {
    let passed = 0
    for (let i = 0; i < PROFILES.length; i++) if (await offlineProfile(i, days, maxBlocks)) passed++
    console.log(`ct:soak-done passed=${passed} profiles=${PROFILES.length}`)
}

async function offlineProfile(i: number, days: number, maxBlocks: number): Promise<boolean> {
    const profile = PROFILES[i]
    const devid = Buffer.from("c01d7ace00000000", "hex")
    devid.setAt(4, "u32", 0x7000 + i)
    const r = await new LongRun(devid, profile, maxBlocks).run(days, days, days, 3)
    const ok = r.verified + r.evicted === r.appended && r.heldFrom >= 0
    // samples per day: 288
    const full = (r.samples - r.heldFrom) / 288
    const summarized = r.summarizedFrom < 0 ? 0 : (r.heldFrom - r.summarizedFrom) / 288
    const a = `ct:offline profile=${profile} days=${days} blocks=${maxBlocks} samples=${r.samples} heldfrom=${r.heldFrom}`
    console.log(a + ` summarizedfrom=${r.summarizedFrom} full=${full} summaries=${summarized} evictions=${r.evictions} ok=${ok ? 1 : 0}`)
    return ok
}
