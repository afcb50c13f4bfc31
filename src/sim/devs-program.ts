import net from "node:net"
import path from "node:path"
import { buildFirmware, VmProcess } from "./vm.js"
import { acquireVmLock } from "./vm-lock.js"
import { HUB_PORT } from "./hub.js"
import { parseConsoleLine } from "./console.js"

/**
 * A DeviceScript program (not a test file) run in the VM on its own: no world, its clock going
 * straight to its next timer (vm-clock's `alone` mode). `devs run --test` would turn on the
 * runtime's GC stress, which costs long runs ~5x their wall time; this does not. The VM still
 * wants a Jacdac link, so a silent one listens on the hub's port (one simulator per machine: the
 * machine-wide VM lock is held). Resolves when a line starts with `doneTag`, or the program exits.
 */
export interface ProgramRun {
    lines: string[]
    /** the line that said it was done, if one did */
    done?: string
    /** the VM's flash file (its settings store), for a look after each line */
    flashFile: string
}

/** The fields of each `ct:<tag> ...` line a program printed, in order. */
export function fieldsTagged(run: ProgramRun, tag: string): Record<string, string>[] {
    return run.lines
        .map(parseConsoleLine)
        .filter(c => c?.tag === tag)
        .map(c => c!.fields)
}

export async function runDevsProgram(
    entry: string,
    dir: string,
    o: { doneTag: string; wallMs: number; onLine?: (line: string, run: ProgramRun) => void },
): Promise<ProgramRun> {
    const fw = await buildFirmware(entry, path.join(dir, "program.devs"))
    const release = await acquireVmLock()
    const hub = net.createServer(s => {
        s.on("data", () => {})
        s.on("error", () => {})
    })
    try {
        await new Promise<void>((resolve, reject) => hub.once("error", reject).listen(HUB_PORT, "127.0.0.1", resolve))
        const vm = new VmProcess(path.join(dir, "device"), fw.bytecode)
        const run: ProgramRun = { lines: [], flashFile: path.join(vm.dir, ".devicescript", "flash", "sim.bin") }
        try {
            await new Promise<void>((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error(`${entry}: not done after ${o.wallMs / 1000} s`)), o.wallMs)
                vm.on("line", (line: string) => {
                    run.lines.push(line)
                    o.onLine?.(line, run)
                    if (line.startsWith(o.doneTag)) {
                        run.done = line
                        clearTimeout(timer)
                        resolve()
                    }
                })
                vm.on("exit", () => {
                    clearTimeout(timer)
                    resolve()
                })
                vm.start({ utc: Date.UTC(2026, 0, 1), mode: "alone" })
            })
        } finally {
            await vm.powerCut()
        }
        return run
    } finally {
        hub.close()
        release()
    }
}
