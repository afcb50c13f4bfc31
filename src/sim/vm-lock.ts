import { openSync, writeSync, closeSync, readFileSync, unlinkSync } from "node:fs"
import os from "node:os"
import path from "node:path"

/**
 * One simulated device per machine: the VM's Jacdac ports (8081/8082) are fixed. Every simulator run
 * holds this lock file (pid inside) while its VM lives; a second run waits, and a lock left by a
 * dead process is taken over.
 */
const LOCK = path.join(os.tmpdir(), "coldtrace-vm.lock")

function alive(pid: number) {
    try {
        process.kill(pid, 0)
        return true
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM"
    }
}

export async function acquireVmLock(timeoutMs = 15 * 60_000, say?: (line: string) => void): Promise<() => void> {
    const t0 = Date.now()
    let told = false
    for (;;) {
        try {
            const fd = openSync(LOCK, "wx")
            writeSync(fd, String(process.pid))
            closeSync(fd)
            return () => {
                try {
                    if (readFileSync(LOCK, "utf8") === String(process.pid)) unlinkSync(LOCK)
                } catch {
                    /* already gone */
                }
            }
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
        }
        let owner = NaN
        try {
            owner = Number(readFileSync(LOCK, "utf8"))
        } catch {
            continue // released between our two calls
        }
        if (!Number.isInteger(owner) || !alive(owner)) {
            try {
                unlinkSync(LOCK)
            } catch {
                /* someone else took it over */
            }
            continue
        }
        if (Date.now() - t0 > timeoutMs) throw new Error(`another simulator run (pid ${owner}) holds ${LOCK}`)
        if (!told) say?.(`waiting for another simulator run (pid ${owner}) to finish ...`)
        told = true
        await new Promise(r => setTimeout(r, 200))
    }
}
