import { spawn, type ChildProcess } from "node:child_process"
import { existsSync, realpathSync, rmSync } from "node:fs"

/**
 * A pseudo-terminal pair joined by socat: bytes written to one end come out of the other, as over
 * a USB serial cable. The tests put the board's end of the protocol (src/usb/bridge.ts) on `a` and
 * open `b` the way a technician's laptop opens a logger's port. `a` and `b` are symlinks socat
 * creates to /dev/pts/N; socat removes them when it stops.
 */
export interface PtyPair {
    a: string
    b: string
    /** the /dev/pts devices behind the links */
    devices: [string, string]
    pid: number
    stop(): Promise<void>
}

/** socat is a Debian package (scripts/setup.sh installs it); a clear error when it is missing */
export async function startPtyPair(a: string, b: string, timeoutMs = 10_000): Promise<PtyPair> {
    for (const l of [a, b]) if (existsSync(l)) throw new Error(`pty link ${l} already exists (a socat still running?)`)
    const child: ChildProcess = spawn("socat", ["-d", "-d", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
        stdio: ["ignore", "ignore", "pipe"],
    })
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>(resolve => child.once("exit", code => resolve(code)))
    const spawnError = new Promise<Error>(resolve => child.once("error", resolve))
    const t0 = Date.now()
    for (;;) {
        const early = await Promise.race([
            exited.then(code => new Error(`socat exited (${code}) before the pty pair was ready: ${stderr.trim()}`)),
            spawnError.then(
                e =>
                    new Error(
                        `cannot start socat (${(e as NodeJS.ErrnoException).code ?? e.message}); install it: sudo apt-get install socat`,
                    ),
            ),
            new Promise<null>(r => setTimeout(() => r(null), 20)),
        ])
        if (early) throw early
        // socat logs "starting data transfer loop" once both ends are open and linked
        if (existsSync(a) && existsSync(b) && /starting data transfer loop/.test(stderr)) break
        if (Date.now() - t0 > timeoutMs) {
            child.kill("SIGTERM")
            throw new Error(`socat did not create ${a} and ${b} within ${timeoutMs} ms: ${stderr.trim()}`)
        }
    }
    const pid = child.pid!
    return {
        a,
        b,
        devices: [realpathSync(a), realpathSync(b)],
        pid,
        async stop() {
            if (child.exitCode === null && child.signalCode === null) {
                child.kill("SIGTERM")
                await exited
            }
            for (const l of [a, b]) rmSync(l, { force: true })
        },
    }
}
