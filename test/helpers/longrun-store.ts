// The log store's long runs (devs/soak/longruns.ts) with the settings store read out of the VM's
// flash file at each checkpoint: the short version in npm test, 400 days in npm run soak.
import { readFileSync } from "node:fs"
import { fieldsTagged, runDevsProgram, type ProgramRun } from "../../src/sim/devs-program.js"
import { readFstor, type FstorState } from "../../src/sim/fstor.js"
import { parseConsoleLine } from "../../src/sim/console.js"

export interface Checkpoint {
    profile: string
    day: number
    appended: number
    store: FstorState
}

export interface LongRunsResult {
    run: ProgramRun
    checkpoints: Checkpoint[]
    /** the `ct:longrun` line of each profile, as fields */
    profiles: Record<string, string>[]
    done: Record<string, string> | undefined
}

/** The flash file as the VM last wrote it (it writes the whole image at each sync: a read may catch it half-written). */
function readStore(file: string): FstorState {
    let last: unknown
    for (let i = 0; i < 100; i++) {
        try {
            return readFstor(readFileSync(file))
        } catch (e) {
            last = e
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)
        }
    }
    throw last
}

export async function runLongRuns(entry: string, dir: string, wallMs: number): Promise<LongRunsResult> {
    const checkpoints: Checkpoint[] = []
    const run = await runDevsProgram(entry, dir, {
        doneTag: "ct:soak-done",
        wallMs,
        onLine: (line, r) => {
            const c = parseConsoleLine(line)
            if (c?.tag !== "longrun-day") return
            checkpoints.push({ profile: c.fields.profile, day: +c.fields.day, appended: +c.fields.appended, store: readStore(r.flashFile) })
        },
    })
    return { run, checkpoints, profiles: fieldsTagged(run, "longrun"), done: run.done ? parseConsoleLine(run.done)?.fields : undefined }
}
