import { describe, expect, it } from "vitest"
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import path from "node:path"
import { promisify } from "node:util"
import { synopsis, usage } from "../src/cli/args.js"
import { COMMANDS } from "../src/cli/commands.js"

// `coldtrace` as a person types it (child processes of bin/coldtrace.js): --help on every command,
// the command list, and bad command lines refused with exit 2. Nothing here gets past the parser,
// so no command runs (sim and bench answer --help and a bad option before they start anything).

const ROOT = path.join(import.meta.dirname, "..")
const BIN = path.join(ROOT, "bin/coldtrace.js")
const run = promisify(execFile)

async function coldtrace(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    try {
        const r = await run(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000 })
        return { code: 0, out: r.stdout, err: r.stderr }
    } catch (e) {
        const x = e as { code: number; stdout: string; stderr: string }
        return { code: x.code, out: x.stdout, err: x.stderr }
    }
}

const hint = (cmd: string, message: string) => `coldtrace ${cmd}: ${message}\n(coldtrace ${cmd} --help for usage)\n`

describe("coldtrace COMMAND --help", () => {
    it.each(COMMANDS.map(c => [c.name, c] as const))("%s --help and -h print the usage and exit 0", async (name, spec) => {
        // a two-word command (device status) is typed as two words
        const [long, short] = await Promise.all([coldtrace(...name.split(" "), "--help"), coldtrace(...name.split(" "), "-h")])
        expect(long).toEqual({ code: 0, out: usage(spec) + "\n", err: "" })
        expect(short).toEqual(long)
        for (const line of synopsis(spec)) expect(long.out).toContain(line)
        for (const option of Object.keys(spec.options)) expect(long.out).toContain(`--${option}`)
        expect(long.out).toContain("-h, --help")
    })

    it.each(COMMANDS.map(c => c.name))("%s refuses an unknown option: one line, the hint, exit 2", async name => {
        expect(await coldtrace(...name.split(" "), "--no-such-option")).toEqual({
            code: 2,
            out: "",
            err: hint(name, 'unknown argument "--no-such-option"'),
        })
    })
})

describe("coldtrace help", () => {
    it("lists every command with its forms and summary, as help, --help and -h", async () => {
        const [help, long, short] = await Promise.all([coldtrace("help"), coldtrace("--help"), coldtrace("-h")])
        expect(help.code).toBe(0)
        expect(help.err).toBe("")
        for (const c of COMMANDS) {
            for (const line of synopsis(c)) expect(help.out).toContain(`  ${line}\n`)
            expect(help.out).toContain(`        ${c.summary}\n`)
        }
        expect(long).toEqual(help)
        expect(short).toEqual(help)
    })

    it("prints one command's usage: coldtrace help verify", async () => {
        const verify = COMMANDS.find(c => c.name === "verify")!
        expect(await coldtrace("help", "verify")).toEqual({ code: 0, out: usage(verify) + "\n", err: "" })
    })

    it("prints a two-word command's usage: coldtrace help device status", async () => {
        const status = COMMANDS.find(c => c.name === "device status")!
        expect(await coldtrace("help", "device", "status")).toEqual({ code: 0, out: usage(status) + "\n", err: "" })
    })

    it("exits 2 without a command, or for an unknown one", async () => {
        const none = await coldtrace()
        expect(none.code).toBe(2)
        expect(none.out).toContain("Commands:")
        expect(await coldtrace("frobnicate")).toEqual({
            code: 2,
            out: "",
            err: 'coldtrace: unknown command "frobnicate"\n(coldtrace help lists the commands)\n',
        })
        expect((await coldtrace("help", "frobnicate")).code).toBe(2)
        expect(await coldtrace("device", "frobnicate")).toEqual({
            code: 2,
            out: "",
            err: 'coldtrace device: unknown command "frobnicate" (list, status, logs, readout, provision, wipe, deploy)\n(coldtrace help lists the commands)\n',
        })
    })
})

describe("bad command lines", () => {
    it("a missing value, a repeated option, a stray word, a missing required option: exit 2, one clear line", async () => {
        const cases: [string[], string, string][] = [
            [["verify", "--db"], "verify", "--db needs a value"],
            [["verify", "--db", "--json"], "verify", "--db needs a value"],
            [["report", "--db", "a", "--db", "b"], "report", "--db given twice"],
            [["ingest", "stray"], "ingest", 'unknown argument "stray"'],
            [["verify", "--json=yes"], "verify", "--json takes no value"],
            [["migrate", "--from", "a.sqlite"], "migrate", "--to DB is required"],
            [["witness", "--key", "k.pem", "--token-file", "t"], "witness", "--db FILE is required"],
            [
                ["report", "--db", "x.sqlite", "--out", "o"],
                "report",
                "--keys FILE is required: the device's keys (device-secret.json) verify the log",
            ],
            [["sim", "--out"], "sim", "--out needs a value"],
            [["bench", "--out"], "bench", "--out needs a value"],
            [["device", "readout"], "device readout", "--out DIR is required"],
            [["device", "wipe"], "device wipe", "--devid DEVID is required: name the logger you mean to wipe"],
        ]
        const results = await Promise.all(cases.map(([args]) => coldtrace(...args)))
        results.forEach((r, i) => expect(r, cases[i][0].join(" ")).toEqual({ code: 2, out: "", err: hint(cases[i][1], cases[i][2]) }))
    })

    it("verify --rules names an unknown preset or an unreadable file as a usage error, listing the presets", async () => {
        const r = await coldtrace(
            "verify",
            "--db",
            "/nonexistent/ingest.sqlite",
            "--keys",
            "/nonexistent/keys.json",
            "--rules",
            "fridge-9-9",
        )
        expect(r.code).toBe(2)
        expect(r.err).toContain("--rules: fridge-9-9 is neither a preset (")
        expect(r.err).toContain("fridge-2-8")
    })

    it("a value may start with a dash: verify --band -25:-15 gets as far as the keys file", async () => {
        const r = await coldtrace("verify", "--db", "/nonexistent/ingest.sqlite", "--keys", "/nonexistent/keys.json", "--band", "-25:-15")
        expect(r.code).toBe(2)
        expect(r.err).toBe(hint("verify", "cannot read keys file /nonexistent/keys.json: ENOENT"))
    })
})

describe("README.md", () => {
    it("its command table gives every command line as the usage does", () => {
        const readme = readFileSync(path.join(ROOT, "README.md"), "utf8")
        for (const c of COMMANDS) for (const line of synopsis(c)) expect(readme).toContain(`| \`${line.replaceAll("|", "\\|")}\``)
    })
})
