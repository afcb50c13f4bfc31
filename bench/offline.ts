// Issue 11 item 4: what the real log store holds after 60 days offline (devs/soak/offline-60.ts, the
// simulator's 20 blocks), in full detail and only as evicted summaries, measured in the VM.
import path from "node:path"
import { runDevsProgram } from "../src/sim/devs-program.js"
import { parseConsoleLine } from "../src/sim/console.js"

type Add = (figure: string, value: number, unit: string, note?: string) => void

export async function offlineRows(tmp: string, add: Add): Promise<void> {
    const run = await runDevsProgram("soak/offline-60.ts", path.join(tmp, "offline"), { doneTag: "ct:soak-done", wallMs: 1_200_000 })
    const rows = run.lines.map(parseConsoleLine).filter(c => c?.tag === "offline")
    if (rows.length !== 3) throw new Error(`offline run: ${rows.length} profiles reported:\n${run.lines.slice(-10).join("\n")}`)
    for (const c of rows) {
        const f = c!.fields
        const note =
            `the real LogStore in the VM, ${f.days} days offline, ${f.blocks} blocks (the simulator's store), ${f.evictions} evictions; ` +
            `the profiles of devs/test/longrun.ts (not the host model's generators of the rows above)`
        add(`offline days held in full detail, ${f.profile}, simulator store (measured)`, +f.full, "days", note)
        add(`offline days held only as summaries, ${f.profile}, simulator store (measured)`, +f.summaries, "days", note)
    }
}
