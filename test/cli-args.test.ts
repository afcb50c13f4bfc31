import { describe, expect, it, vi } from "vitest"
import { UsageError, parseCommand, runCommand, synopsis, usage, type CommandSpec } from "../src/cli/args.js"
import { COMMANDS, REPORT_SPEC } from "../src/cli/commands.js"
import { DEFAULT_FORMATS } from "../src/report/cli.js"

// The one command-line parser (src/cli/args.ts) on a spec of its own, and every command's spec.
// Host only: nothing runs.

const SPEC = {
    name: "demo",
    summary: "A command for the tests.",
    forms: ["--in [--band] [--json]", "--other [--mark ...]"],
    options: {
        in: { type: "string", value: "FILE", help: "the input" },
        other: { type: "string", value: "DB", help: "another input" },
        band: { type: "string", value: "LOW:HIGH", help: "a band\nover two lines" },
        mark: { type: "string", value: "M", multiple: true, help: "a mark" },
        out: { type: "string", value: "DIR", required: "it goes somewhere", help: "the output" },
        level: { type: "string", value: "N", default: "3", help: "a level" },
        json: { type: "boolean", help: "JSON" },
    },
    notes: "Exit 0, 1 or 2.",
} as const satisfies CommandSpec

const parse = (...args: string[]) => parseCommand(SPEC, args)
const refused = (args: string[]) => {
    try {
        parseCommand(SPEC, args)
    } catch (e) {
        expect(e).toBeInstanceOf(UsageError)
        return (e as Error).message
    }
    throw new Error(`accepted ${JSON.stringify(args)}`)
}

describe("parseCommand", () => {
    it("gives every option a value: given, default, false or empty", () => {
        expect(parse("--out", "o", "--in", "a.json", "--json")).toEqual({
            in: "a.json",
            other: undefined,
            band: undefined,
            mark: [],
            out: "o",
            level: "3",
            json: true,
        })
        expect(parse("--out=o", "--level", "5", "--mark", "x", "--mark", "y")).toMatchObject({ out: "o", level: "5", mark: ["x", "y"] })
    })

    it("takes a value that starts with one dash", () => {
        expect(parse("--out", "o", "--band", "-25:-15")).toMatchObject({ band: "-25:-15" })
        expect(parse("--out", "o", "--band=-25:-15")).toMatchObject({ band: "-25:-15" })
    })

    it("answers help for --help or -h anywhere, before any other check", () => {
        expect(parse("--help")).toBe("help")
        expect(parse("-h")).toBe("help")
        expect(parse("--frobnicate", "--in", "x", "-h")).toBe("help")
    })

    it("refuses bad command lines with one clear line", () => {
        expect(refused(["--out", "o", "--frobnicate"])).toBe('unknown argument "--frobnicate"')
        expect(refused(["--out", "o", "-x"])).toBe('unknown argument "-x"')
        expect(refused(["--out", "o", "stray"])).toBe('unknown argument "stray"')
        expect(refused(["--out", "o", "--", "--in"])).toBe('unknown argument "--in"')
        expect(refused(["--out", "o", "--in"])).toBe("--in needs a value")
        expect(refused(["--in", "--out", "o"])).toBe("--in needs a value")
        expect(refused(["--out", "o", "--in="])).toBe("--in needs a value")
        expect(refused(["--out", "o", "--json=yes"])).toBe("--json takes no value")
        expect(refused(["--out", "o", "--in", "a", "--in", "b"])).toBe("--in given twice")
        expect(refused(["--in", "a"])).toBe("--out DIR is required: it goes somewhere")
        expect(refused(["--toString", "x"])).toBe('unknown argument "--toString"')
    })
})

describe("usage", () => {
    it("is generated from the spec: forms with placeholders, every option, the notes", () => {
        expect(synopsis(SPEC)).toEqual(["coldtrace demo --in FILE [--band LOW:HIGH] [--json]", "coldtrace demo --other DB [--mark M ...]"])
        const u = usage(SPEC)
        expect(u.split("\n").slice(0, 4)).toEqual([...synopsis(SPEC), "", "A command for the tests."])
        expect(u).toContain("  --band LOW:HIGH  a band\n                   over two lines\n")
        expect(u).toContain("  --out DIR        the output (required)\n")
        expect(u).toContain("  --level N        a level (default 3)\n")
        expect(u).toContain("  -h, --help       print this text\n")
        expect(u.endsWith("\n\nExit 0, 1 or 2.")).toBe(true)
    })

    it("without forms: the required options, then the others in brackets", () => {
        const spec = {
            name: "x",
            summary: "x",
            options: {
                a: { type: "boolean", help: "a" },
                b: { type: "string", value: "B", required: true, help: "b" },
            },
        } as const satisfies CommandSpec
        expect(synopsis(spec)).toEqual(["coldtrace x --b B [--a]"])
    })

    it("refuses a form that names an option the command does not have", () => {
        expect(() => synopsis({ ...SPEC, forms: ["--nope"] })).toThrow(/names no option --nope/)
    })
})

describe("runCommand", () => {
    async function run(args: string[], body = async () => 0, isUsageError?: (e: unknown) => boolean) {
        const out: string[] = []
        const err: string[] = []
        const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")))
        const error = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")))
        try {
            return { code: await runCommand(SPEC, args, body, isUsageError), out: out.join("\n"), err: err.join("\n") }
        } finally {
            log.mockRestore()
            error.mockRestore()
        }
    }

    it("prints the usage for --help and exits 0 without running the command", async () => {
        const body = vi.fn(async () => 1)
        expect(await run(["--help"], body)).toEqual({ code: 0, out: usage(SPEC), err: "" })
        expect(body).not.toHaveBeenCalled()
    })

    it("exits 2 with one line and the hint for a usage error, from the parser or the command", async () => {
        expect(await run(["--bogus"])).toEqual({
            code: 2,
            out: "",
            err: 'coldtrace demo: unknown argument "--bogus"\n(coldtrace demo --help for usage)',
        })
        const r = await run(["--out", "o"], async () => {
            throw new UsageError("give --in or --other")
        })
        expect(r).toMatchObject({ code: 2, err: "coldtrace demo: give --in or --other\n(coldtrace demo --help for usage)" })
        class InputError extends Error {}
        const t = await run(
            ["--out", "o"],
            async () => {
                throw new InputError("cannot read it")
            },
            e => e instanceof InputError,
        )
        expect(t).toMatchObject({ code: 2, err: "coldtrace demo: cannot read it\n(coldtrace demo --help for usage)" })
    })

    it("returns the command's exit code, and lets other errors through", async () => {
        expect((await run(["--out", "o"], async () => 1)).code).toBe(1)
        await expect(
            run(["--out", "o"], async () => {
                throw new RangeError("a bug")
            }),
        ).rejects.toThrow("a bug")
    })
})

describe("every command's spec", () => {
    it("has a unique name, a one-line summary, forms that name its options and every option in a form", () => {
        expect(new Set(COMMANDS.map(c => c.name)).size).toBe(COMMANDS.length)
        for (const c of COMMANDS) {
            expect(c.summary, c.name).not.toContain("\n")
            expect(c.options.help, c.name).toBeUndefined()
            const forms = synopsis(c).join(" ")
            for (const [name, o] of Object.entries(c.options)) {
                expect(forms, `${c.name} --${name}`).toContain(`--${name}`)
                if (o.type === "string") expect(o.value, `${c.name} --${name}`).toMatch(/^\S+$/)
            }
        }
    })

    it("report: the default formats are the command's", () => {
        expect(REPORT_SPEC.options.format.default).toBe(DEFAULT_FORMATS.join(","))
    })
})
