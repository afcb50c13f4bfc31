// The one command-line parser of every `coldtrace` command: a command is described once (a
// CommandSpec: its options, their values and help), Node's util.parseArgs splits the words, and
// the usage text (`coldtrace CMD --help`) and the `coldtrace help` list are generated from the
// same spec. Bad input is a UsageError: one line on stderr, a hint to --help, exit 2.
import { parseArgs } from "node:util"

/** Bad input on the command line (or an input file the command cannot use): exit 2, nothing done. */
export class UsageError extends Error {}

export interface OptionSpec {
    type: "string" | "boolean"
    /** the value's placeholder in the usage text (FILE, DIR, HOST:PORT); string options only */
    value?: string
    /** one-letter alias (-h is --help's) */
    short?: string
    /** the parser refuses a command line without it; a string is the reason, added to the message */
    required?: boolean | string
    /** may be given more than once (the values in order); otherwise a second one is refused */
    multiple?: boolean
    /** the value when not given */
    default?: string
    /** what it means, for the usage text (lines after the first are indented under it) */
    help: string
}

export interface CommandSpec {
    name: string
    /** one line for `coldtrace help` */
    summary: string
    /**
     * The command line's forms, written with option names only ("--db --keys [--json]",
     * "(--db | --export) --keys"): each name is printed with its placeholder. Without forms: the
     * required options, then every other one in brackets.
     */
    forms?: readonly string[]
    options: Record<string, OptionSpec>
    /** what the usage text says after the options: exit codes, signals, defaults */
    notes?: string
}

type ValueOf<O extends OptionSpec> = O extends { type: "boolean" }
    ? boolean
    : O extends { multiple: true }
      ? string[]
      : O extends { default: string } | { required: true | string }
        ? string
        : string | undefined

/** The parsed command line: a value per option, typed from the spec. */
export type Values<S extends CommandSpec> = { [K in keyof S["options"]]: ValueOf<S["options"][K]> }

const HELP: OptionSpec = { type: "boolean", short: "h", help: "print this text" }

const flag = (name: string, o: OptionSpec) => (o.type === "string" ? `--${name} ${o.value ?? "VALUE"}` : `--${name}`)

/** The forms of the command line, each with its placeholders ("coldtrace verify --db DB ..."). */
export function synopsis(spec: CommandSpec): string[] {
    const forms = spec.forms ?? [
        Object.entries(spec.options)
            .map(([name, o]) => (o.required ? `--${name}` : `[--${name}]`))
            .sort((a, b) => Number(a.startsWith("[")) - Number(b.startsWith("[")))
            .join(" "),
    ]
    return forms.map(form => {
        const line = form.replace(/--([a-z][a-z0-9-]*)/g, (_, name: string) => {
            const o = spec.options[name]
            if (!o) throw new Error(`coldtrace ${spec.name}: the form ${JSON.stringify(form)} names no option --${name}`)
            return flag(name, o)
        })
        return `coldtrace ${spec.name}${line ? ` ${line}` : ""}`
    })
}

/** The whole usage text of a command, as `coldtrace CMD --help` prints it. */
export function usage(spec: CommandSpec): string {
    const rows = Object.entries({ ...spec.options, help: HELP }).map(([name, o]) => {
        const left = `${o.short ? `-${o.short}, ` : ""}${flag(name, o)}`
        const extra = [o.required ? "required" : "", o.default !== undefined ? `default ${o.default}` : ""].filter(Boolean).join("; ")
        return { left, text: extra ? `${o.help} (${extra})` : o.help }
    })
    const width = Math.max(...rows.map(r => r.left.length)) + 2
    const options = rows.map(r => `  ${r.left.padEnd(width)}${r.text.split("\n").join(`\n  ${" ".repeat(width)}`)}`)
    return [...synopsis(spec), "", spec.summary, "", "Options:", ...options, ...(spec.notes ? ["", spec.notes] : [])].join("\n")
}

/** The one line printed for a usage error, with the hint to --help. */
export function usageErrorText(command: string, message: string): string {
    return `coldtrace ${command}: ${message}\n(coldtrace ${command} --help for usage)`
}

/**
 * The command line as values, or "help" when it asks for --help/-h. Refuses (UsageError) an
 * unknown option or a stray word, a string option without a value (none, an empty one, or the
 * next option), a value given to a boolean option, an option given twice (unless `multiple`), and
 * a required option left out. A value may start with one dash (`--band -25:-15`).
 */
export function parseCommand<S extends CommandSpec>(spec: S, args: string[]): Values<S> | "help" {
    const options = { ...spec.options, help: HELP }
    const config = Object.fromEntries(
        Object.entries(options).map(([name, o]) => [name, { type: o.type, ...(o.short ? { short: o.short } : {}) }]),
    )
    // not strict: the checks are ours (one wording for every command, and values may start with "-")
    const { tokens } = parseArgs({ args, options: config, strict: false, allowPositionals: true, tokens: true })
    if (tokens.some(t => t.kind === "option" && t.name === "help")) return "help"
    const values: Record<string, string | string[] | boolean | undefined> = {}
    for (const t of tokens) {
        if (t.kind === "option-terminator") continue
        if (t.kind === "positional") throw new UsageError(`unknown argument ${JSON.stringify(t.value)}`)
        const o = Object.hasOwn(spec.options, t.name) ? spec.options[t.name] : undefined
        if (!o) throw new UsageError(`unknown argument ${JSON.stringify(t.rawName)}`)
        const name = `--${t.name}`
        if (o.type === "boolean") {
            if (t.inlineValue) throw new UsageError(`${name} takes no value`)
            values[t.name] = true
            continue
        }
        if (t.value === undefined || t.value === "" || (!t.inlineValue && t.value.startsWith("--")))
            throw new UsageError(`${name} needs a value`)
        if (o.multiple) values[t.name] = [...((values[t.name] as string[] | undefined) ?? []), t.value]
        else if (values[t.name] !== undefined) throw new UsageError(`${name} given twice`)
        else values[t.name] = t.value
    }
    for (const [name, o] of Object.entries(spec.options)) {
        if (values[name] !== undefined) continue
        if (o.required) throw new UsageError(`${flag(name, o)} is required${typeof o.required === "string" ? `: ${o.required}` : ""}`)
        values[name] = o.type === "boolean" ? false : o.multiple ? [] : o.default
    }
    return values as Values<S>
}

/**
 * Run a command: --help prints the usage (exit 0); a UsageError, or an error `isUsageError`
 * accepts, prints one line and the hint (exit 2); otherwise `body` decides the exit code.
 */
export async function runCommand<S extends CommandSpec>(
    spec: S,
    args: string[],
    body: (values: Values<S>) => Promise<number>,
    isUsageError: (e: unknown) => boolean = () => false,
): Promise<number> {
    try {
        const values = parseCommand(spec, args)
        if (values === "help") {
            console.log(usage(spec))
            return 0
        }
        return await body(values)
    } catch (e) {
        if (e instanceof UsageError || isUsageError(e)) {
            console.error(usageErrorText(spec.name, (e as Error).message))
            return 2
        }
        throw e
    }
}
