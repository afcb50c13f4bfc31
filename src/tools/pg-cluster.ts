// A private PostgreSQL cluster for tests and the bench: initdb in a temp folder, the server on a
// unix socket only (no TCP), fsync off (on with `durable`: the bench), stopped and removed by
// stop(). Needs Debian's `postgresql` package (scripts/setup.sh installs it). As root it runs the
// server as the `postgres` user, since PostgreSQL refuses to run as root.
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import pg from "pg"

export interface PgCluster {
    /** the folder with the socket (host= for libpq) */
    socketDir: string
    /** a postgres:// URL for a database of this cluster */
    url(database?: string): string
    /** a fresh empty database; its URL */
    createDatabase(name: string): Promise<string>
    stop(): Promise<void>
}

/** The folder with initdb and postgres: on PATH, or Debian's /usr/lib/postgresql/<newest>/bin. */
export function pgBinDir(): string | null {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) if (dir && existsSync(path.join(dir, "initdb"))) return dir
    const base = "/usr/lib/postgresql"
    if (!existsSync(base)) return null
    const versions = readdirSync(base)
        .filter(v => /^\d+$/.test(v) && existsSync(path.join(base, v, "bin", "postgres")))
        .sort((a, b) => Number(b) - Number(a))
    return versions.length ? path.join(base, versions[0], "bin") : null
}

function runAs(): { uid?: number; gid?: number } {
    if (process.getuid?.() !== 0) return {}
    const id = (flag: string) => spawnSync("id", [flag, "postgres"], { encoding: "utf8" })
    const uid = Number(id("-u").stdout.trim())
    const gid = Number(id("-g").stdout.trim())
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0)
        throw new Error("running as root needs the 'postgres' user (Debian's postgresql package creates it) to run the server")
    return { uid, gid }
}

const USER = "coldtrace"

/**
 * `durable`: keep PostgreSQL's own fsync, synchronous_commit and full_page_writes (the bench: a
 * commit costs what it costs in production); tests turn them off.
 */
export async function startPgCluster(o: { maxConnections?: number; durable?: boolean } = {}): Promise<PgCluster> {
    const bin = pgBinDir()
    if (!bin) throw new Error("PostgreSQL is not installed: run scripts/setup.sh (apt-get install postgresql)")
    const ids = runAs()
    const dir = mkdtempSync(path.join(os.tmpdir(), "coldtrace-pg-"))
    const data = path.join(dir, "data")
    if (ids.uid !== undefined) {
        chownSync(dir, ids.uid, ids.gid!)
        chmodSync(dir, 0o700)
    }
    const init = spawnSync(path.join(bin, "initdb"), ["-D", data, "-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"], {
        ...ids,
        encoding: "utf8",
    })
    if (init.status !== 0) {
        rmSync(dir, { recursive: true, force: true })
        throw new Error(`initdb failed: ${init.stderr || init.stdout}`)
    }
    const settings = {
        listen_addresses: "",
        unix_socket_directories: dir,
        ...(o.durable ? {} : { fsync: "off", synchronous_commit: "off", full_page_writes: "off" }),
        max_connections: String(o.maxConnections ?? 100),
        shared_buffers: "128MB",
    }
    const args = ["-D", data, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])]
    const server: ChildProcess = spawn(path.join(bin, "postgres"), args, { ...ids, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    server.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)))
    const exited = new Promise<void>(resolve => server.once("exit", () => resolve()))
    const url = (database = "postgres") => `postgres://${USER}@/${database}?host=${encodeURIComponent(dir)}`

    // ready once a connection succeeds (or the server has exited)
    let dead = false
    void exited.then(() => (dead = true))
    for (let i = 0; ; i++) {
        const c = new pg.Client({ connectionString: url() })
        try {
            await c.connect()
            await c.end()
            break
        } catch (e) {
            await c.end().catch(() => {})
            if (dead || i > 300) {
                server.kill("SIGKILL")
                rmSync(dir, { recursive: true, force: true })
                throw new Error(`postgres did not start: ${(e as Error).message}\n${stderr}`)
            }
            await new Promise(r => setTimeout(r, 50))
        }
    }
    return {
        socketDir: dir,
        url,
        async createDatabase(name: string) {
            if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new RangeError(`database name ${name}`)
            const c = new pg.Client({ connectionString: url() })
            await c.connect()
            try {
                await c.query(`CREATE DATABASE ${name}`)
            } finally {
                await c.end()
            }
            return url(name)
        },
        async stop() {
            if (!dead) {
                server.kill("SIGINT") // fast shutdown: disconnects clients, no checkpoint wait for fsync off
                await exited
            }
            rmSync(dir, { recursive: true, force: true })
        },
    }
}
