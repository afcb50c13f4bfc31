// Issue 11 item 4: what the real log store holds after 60 days offline (devs/soak/offline-60.ts, the
// simulator's 20 blocks), in full detail and only as evicted summaries, measured in the VM.
import path from "node:path"
import { fieldsTagged, runDevsProgram, type ProgramRun } from "../src/sim/devs-program.js"

type Add = (figure: string, value: number, unit: string, note?: string) => void

/** The offline program's run and its `ct:offline` line per profile (the soak test reads the same). */
export async function runOffline(dir: string): Promise<{ run: ProgramRun; profiles: Record<string, string>[] }> {
    const run = await runDevsProgram("soak/offline-60.ts", dir, { doneTag: "ct:soak-done", wallMs: 1_200_000 })
    return { run, profiles: fieldsTagged(run, "offline") }
}

export async function offlineRows(tmp: string, add: Add): Promise<void> {
    const { run, profiles } = await runOffline(path.join(tmp, "offline"))
    if (profiles.length !== 3) throw new Error(`offline run: ${profiles.length} profiles reported:\n${run.lines.slice(-10).join("\n")}`)
    for (const f of profiles) {
        const note =
            `the real LogStore in the VM, ${f.days} days offline, ${f.blocks} blocks (the simulator's store), ${f.evictions} evictions; ` +
            `the profiles of devs/test/longrun.ts (not the host model's generators of the rows above)`
        add(`offline days held in full detail, ${f.profile}, simulator store (measured)`, +f.full, "days", note)
        add(`offline days held only as summaries, ${f.profile}, simulator store (measured)`, +f.summaries, "days", note)
    }
}
