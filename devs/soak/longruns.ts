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
