import { describe, it, expect, beforeAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { mkdtempSync, readFileSync, statSync } from "node:fs"
import Database from "better-sqlite3"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { exportInput, readExportFile } from "../src/verify/inputs.js"

// Recovery after the ingest server's database is restored from an older backup (issue 12 item 4),
// with the real firmware and an independent witness process (item 2). Two restores: the first from
// a backup the logger's next batch of whole blocks still covers (healed without the logger noticing),
// the second from one older than anything it holds: its batch is refused with the server's 409 ack,
// it lowers its own ack to what the server holds and sends again from its first held record (PREV).
// Every record ends in the database once, or in the one gap the verifier names, with why.

function seqsIn(file: string): number[] {
    const db = new Database(file, { readonly: true })
    try {
        return (db.prepare("SELECT seq FROM records ORDER BY seq").all() as { seq: number }[]).map(r => r.seq)
    } finally {
        db.close()
    }
}

describe("server database restored from older backups (server-restore scenario)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/server-restore.json"))
    let r: RunResult
    let out: string
    let stored: number[]
    let backupLast: number[]

    beforeAll(async () => {
        out = mkdtempSync(path.join(os.tmpdir(), "coldtrace-restore-"))
        r = await runScenario({ scenario, outDir: out })
        stored = seqsIn(r.dbPath)
        backupLast = [0, 1].map(n => Math.max(...seqsIn(path.join(out, `ingest-backup-${n}.sqlite`))))
    }, 240_000)

    it("the first restore heals without a resync: the next batch of whole blocks covers what the backup lacks", () => {
        const resyncs = r.observed.console.tagged("resync")
        expect(resyncs).toHaveLength(1)
        // everything up to the second backup is in the database: the first restore lost nothing
        for (let q = 0; q <= backupLast[1]; q++) expect(stored).toContain(q)
        expect(backupLast[0]).toBeLessThan(backupLast[1])
    })

    it("after the second restore the logger takes the server's 409 ack, lowers its own and sends again from what it holds", () => {
        const lines = r.observed.vmLines
        const at = lines.findIndex(l => l.startsWith("ct:resync "))
        // the refused batch, answered with what the restored database holds
        expect(lines[at - 1]).toMatch(new RegExp(`^ct:upload .* status=409 .* ack=${backupLast[1]}$`))
        expect(lines[at]).toBe(`ct:resync ack=${backupLast[1]}`)
        // then at once a batch that is taken
        const next = lines.slice(at + 1).find(l => l.startsWith("ct:upload "))
        expect(next).toMatch(/status=200/)
    })

    it("every record is in the database once, except one gap: acknowledged, freed by the logger, lost by the server", () => {
        expect(new Set(stored).size).toBe(stored.length)
        const last = stored[stored.length - 1]
        const missing: number[] = []
        for (let q = 0; q <= last; q++) if (!stored.includes(q)) missing.push(q)
        expect(missing[0]).toBe(backupLast[1] + 1)
        // one run of seqs, ending where the logger's resend started
        expect(missing[missing.length - 1] - missing[0] + 1).toBe(missing.length)
        const resent = r.observed.vmLines
            .slice(r.observed.vmLines.findIndex(l => l.startsWith("ct:resync ")))
            .find(l => l.includes("status=200"))
        expect(Number(/first=(\d+)/.exec(resent!)![1])).toBe(missing[missing.length - 1] + 1)
        // nothing else is lost: every sample taken is stored, still on the device, or in that gap
        const held = exportInput(readExportFile(path.join(out, "device-export.json"))).records ?? []
        expect(held.length).toBeGreaterThan(0)
        const onDevice = new Set(held.map(x => x.seq))
        const gap = new Set(missing)
        for (const q of r.observed.sampleLines.keys()) expect(stored.includes(q) || onDevice.has(q) || gap.has(q)).toBe(true)
    })

    it("the verifier names exactly that gap, and why: the witness had cosigned a checkpoint inside it", () => {
        const s = JSON.parse(readFileSync(r.summaryPath, "utf8"))
        const server = s.verification.find((v: { what: string }) => v.what.startsWith("server database"))
        expect(server.what).toBe("server database, with the witness")
        expect(server.problems).toHaveLength(1)
        const p = server.problems[0]
        expect(p).toMatchObject({ kind: "deleted", seq: backupLast[1] + 1 })
        expect(p.detail).toMatch(/witness [0-9a-f]+ cosigned the server's checkpoint at seqs? \d+/)
        expect(p.detail).toMatch(/the server had acknowledged these records/)
    })

    it("the witness ran as its own process with its own files (0600) and refused the restored server's contradicting checkpoints", () => {
        expect(statSync(path.join(out, "witness/witness.sqlite")).mode & 0o077).toBe(0)
        expect(statSync(path.join(out, "witness/token")).mode & 0o077).toBe(0)
        const log = readFileSync(path.join(out, "ingest.log"), "utf8")
        expect(log).toMatch(/"witness":"refused".*the proof skips seq/)
        expect(log).toMatch(/database restored from ingest-backup-1.sqlite/)
    })
})
