// The coldtrace board definitions (hardware/coldtrace_v1.board.json, the devkit build, and
// hardware/coldtrace_v2.board.json, the carrier board) must be accepted by the DeviceScript CLI, must not
// use any GPIO twice, and must respect the classic ESP32's pin rules.
//
// Note: `devs build` has no `--board` flag (checked with `devs build --help`, CLI 2.16.4). It validates
// every `*.board.json` in the DeviceScript project's `boards/` folder on every build (a bad board fails
// the build), and a program binds to a board with `import { pins, board } from "@dsboard/coldtrace_v1"`.
import { describe, test, expect } from "vitest"
import { spawnSync } from "node:child_process"
import {
    existsSync,
    lstatSync,
    mkdtempSync,
    readFileSync,
    readlinkSync,
    rmSync,
    mkdirSync,
    writeFileSync,
    symlinkSync,
    statSync,
} from "node:fs"
import { join, resolve, dirname } from "node:path"
import { tmpdir } from "node:os"
import { fileURLToPath } from "node:url"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const DEVS_DIR = join(ROOT, "devs")
const DEVS_BIN = join(ROOT, "node_modules", ".bin", "devs")
const TIMEOUT = 60_000

function devs(args: string[], cwd: string) {
    const r = spawnSync(DEVS_BIN, ["--no-colors", ...args], {
        cwd,
        encoding: "utf8",
        timeout: TIMEOUT - 5_000,
        env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
    })
    return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}`, error: r.error }
}

interface BoardJson {
    archId: string
    productId: string
    devName: string
    pins: Record<string, number>
    sPin?: Record<string, number>
    i2c?: { pinSDA: string | number; pinSCL: string | number; kHz?: number }
    led?: { pin?: string | number }
    [k: string]: unknown
}

/** Resolve a pin reference the way the runtime does (dcfg_get_pin): a string is a label in `pins`. */
function gpioOf(board: BoardJson, ref: string | number | undefined): number | undefined {
    if (typeof ref === "number") return ref
    if (typeof ref === "string") return board.pins[ref]
    return undefined
}

// Classic ESP32 (ESP32-D0WD-V3 in the WROOM-32E) pin facts, as in the CLI's "esp32" arch table
// (CLI 2.16.4) and the ESP32 datasheet.
const ESP32_GPIOS = [...Array(40).keys()].filter(g => ![20, 24, 28, 29, 30, 31].includes(g))
const FLASH = [6, 7, 8, 9, 10, 11]
const PSRAM = [16, 17] // free on WROOM-32E, taken on WROVER: keep them free so either module fits
const STRAPPING = [0, 2, 5, 12, 15]
const UART0 = [1, 3] // the Jacdac link to the host on the classic ESP32
const INPUT_ONLY = [34, 35, 36, 37, 38, 39]
const ADC1 = [32, 33, 34, 35, 36, 37, 38, 39] // ADC2 is unusable while Wi-Fi is on
// RTC GPIOs: the only pins that can wake the chip from deep sleep (ext0 / ext1)
const RTC_GPIOS = [0, 2, 4, 12, 13, 14, 15, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39]

interface BoardSpec {
    id: string
    /** labels the firmware needs */
    labels: string[]
    /** labels that must be able to drive */
    outputs: string[]
    /** labels used only as inputs (may sit on input-only pins) */
    inputs: string[]
    /** labels that must be RTC GPIOs (deep-sleep wake sources) */
    wake: string[]
    /** boot level the runtime sets (sPin) */
    bootLevels: Record<string, number>
}

const BOARDS: BoardSpec[] = [
    {
        id: "coldtrace_v1",
        labels: ["SCK", "MOSI", "MISO", "TC_CS", "TC_DRDY", "SDA", "SCL", "LED", "VBAT"],
        outputs: ["SCK", "MOSI", "TC_CS", "LED", "SDA", "SCL"],
        inputs: ["MISO", "TC_DRDY"],
        wake: [],
        bootLevels: { TC_CS: 1 },
    },
    {
        id: "coldtrace_v2",
        labels: ["SCK", "MOSI", "MISO", "TC_CS", "TC_DRDY", "SDA", "SCL", "LED", "VBAT", "VBAT_EN", "GNSS_EN", "LID", "NC_ATTN"],
        outputs: ["SCK", "MOSI", "TC_CS", "LED", "SDA", "SCL", "VBAT_EN", "GNSS_EN"],
        inputs: ["MISO", "TC_DRDY", "LID", "NC_ATTN"],
        wake: ["LID", "NC_ATTN"],
        // chip select deselected; GNSS and battery divider off until the firmware turns them on
        bootLevels: { TC_CS: 1, VBAT_EN: 0, GNSS_EN: 1 },
    },
]

/** The "esp32" arch entry of the CLI's built-in boards table (CLI 2.16.4), for `devs binpatch --fake`. */
const ESP32_ARCH = {
    id: "esp32",
    name: "ESP32",
    binFlashOffset: "0x1000",
    dcfgOffset: "0x9000",
    flashPageSize: 4096,
    fstorOffset: "0x1c0000",
    fstorPages: 64,
    pins: {
        analogIn: "32-39",
        analogOut: "25,26",
        boot: "0,2,5,12,15",
        bootUart: "1,3",
        debug: "12-15",
        flash: "6-11",
        input: "io,34,35,36,37,38,39",
        io: "boot,4,13,14,18,19,21,22,23,25,26,27,32,33",
        psram: "16,17",
        touch: "0,2,4,12-15,27,32,33",
    },
}

for (const spec of BOARDS)
    describe(`${spec.id} board JSON`, () => {
        const BOARD_FILE = join(ROOT, "hardware", `${spec.id}.board.json`)
        const board: BoardJson = JSON.parse(readFileSync(BOARD_FILE, "utf8"))

        test("archId and productId pass the CLI's checks", () => {
            expect(board.archId).toBe("esp32")
            expect(/^0x[0-9a-f]{8}$/i.test(board.productId)).toBe(true)
            // validateBoard(): (productId & 0xF0000000) == 0x30000000
            expect((Number(board.productId) & 0xf0000000) >>> 0).toBe(0x30000000)
            expect(board.id === undefined || board.id === spec.id).toBe(true)
        })

        test("no GPIO is used twice", () => {
            const used = new Map<number, string>()
            const clash: string[] = []
            for (const [label, gpio] of Object.entries(board.pins)) {
                if (label.startsWith("#")) continue
                expect(typeof gpio).toBe("number")
                const prev = used.get(gpio)
                if (prev) clash.push(`GPIO${gpio}: ${prev} and ${label}`)
                used.set(gpio, label)
            }
            // Functions given by number (not by label) would be a second use of a labelled GPIO.
            for (const [fn, ref] of [
                ["i2c.pinSDA", board.i2c?.pinSDA],
                ["i2c.pinSCL", board.i2c?.pinSCL],
                ["led.pin", board.led?.pin],
            ] as const) {
                if (typeof ref === "number") {
                    const prev = used.get(ref)
                    if (prev) clash.push(`GPIO${ref}: ${prev} and ${fn}`)
                    used.set(ref, fn)
                }
            }
            expect(clash).toEqual([])
        })

        test("every function the firmware needs has a pin", () => {
            for (const label of spec.labels) expect(board.pins[label], label).toBeTypeOf("number")
            expect(
                Object.keys(board.pins)
                    .filter(l => !l.startsWith("#"))
                    .sort(),
            ).toEqual([...spec.labels].sort())
            expect(gpioOf(board, board.i2c?.pinSDA)).toBe(board.pins.SDA)
            expect(gpioOf(board, board.i2c?.pinSCL)).toBe(board.pins.SCL)
            expect(gpioOf(board, board.led?.pin)).toBe(board.pins.LED)
            // chip select starts high (MAX31856 deselected), switches start off, before the firmware runs
            expect(board.sPin).toEqual(spec.bootLevels)
        })

        test("pins respect the classic ESP32's rules", () => {
            for (const [label, gpio] of Object.entries(board.pins)) {
                expect(ESP32_GPIOS, `${label}=GPIO${gpio} exists`).toContain(gpio)
                expect(FLASH, `${label}=GPIO${gpio} is a flash pin`).not.toContain(gpio)
                expect(PSRAM, `${label}=GPIO${gpio} is a PSRAM pin`).not.toContain(gpio)
                expect(STRAPPING, `${label}=GPIO${gpio} is a strapping pin`).not.toContain(gpio)
                expect(UART0, `${label}=GPIO${gpio} is UART0`).not.toContain(gpio)
            }
            for (const out of spec.outputs) expect(INPUT_ONLY, `${out} must be able to drive`).not.toContain(board.pins[out])
            expect([...spec.outputs, ...spec.inputs, "VBAT"].sort()).toEqual([...spec.labels].sort())
            expect(ADC1, "battery sense must be on ADC1").toContain(board.pins.VBAT)
            for (const w of spec.wake) expect(RTC_GPIOS, `${w} must be an RTC GPIO to wake the chip`).toContain(board.pins[w])
        })

        test("runtime config keys fit in 15 bytes (checked only at flash/bundle time)", () => {
            // the runtime stores the board as flat keys such as "pins.TC_DRDY", at most 15 bytes each
            const keys: string[] = []
            const flatten = (v: unknown, key: string) => {
                if (Array.isArray(v)) v.forEach((e, i) => flatten(e, key + String.fromCharCode(128 + i)))
                else if (v && typeof v === "object")
                    for (const k of Object.keys(v)) {
                        if (k.startsWith("$") || k.startsWith("#")) continue
                        flatten((v as Record<string, unknown>)[k], key ? `${key}.${k}` : k)
                    }
                else keys.push(key)
            }
            flatten(board, "")
            const tooLong = keys.filter(k => Buffer.byteLength(k) > 15)
            expect(tooLong).toEqual([])
        })

        test(
            "the runtime config compiles offline (devs binpatch --fake)",
            () => {
                const dir = mkdtempSync(join(tmpdir(), "coldtrace-dcfg-"))
                try {
                    writeFileSync(join(dir, "arch.json"), JSON.stringify(ESP32_ARCH))
                    writeFileSync(join(dir, `${spec.id}.board.json`), readFileSync(BOARD_FILE))
                    mkdirSync(join(dir, "out"))
                    // -v makes compileBoard() serialize the config too (key lengths, value types)
                    const r = devs(["-v", "binpatch", "--fake", "--bin", "none.bin", "-o", "out", `${spec.id}.board.json`], dir)
                    expect(r.out).not.toMatch(/fatal|Error:/)
                    expect(r.status, r.out).toBe(0)
                    const info = JSON.parse(readFileSync(join(dir, "out", "info.json"), "utf8"))
                    expect(info.boards[spec.id].devName).toBe(board.devName)
                } finally {
                    rmSync(dir, { recursive: true, force: true })
                }
            },
            TIMEOUT,
        )
    })

describe("devs build with the coldtrace boards", () => {
    for (const spec of BOARDS)
        test(`devs/boards/${spec.id}.board.json is a relative symlink to hardware/`, () => {
            const BOARD_FILE = join(ROOT, "hardware", `${spec.id}.board.json`)
            const BOARD_LINK = join(DEVS_DIR, "boards", `${spec.id}.board.json`)
            expect(lstatSync(BOARD_LINK).isSymbolicLink()).toBe(true)
            expect(readlinkSync(BOARD_LINK)).toBe(`../../hardware/${spec.id}.board.json`)
            expect(readFileSync(BOARD_LINK, "utf8")).toBe(readFileSync(BOARD_FILE, "utf8"))
        })

    test("the board ids are distinct products", () => {
        const ids = BOARDS.map(b => JSON.parse(readFileSync(join(ROOT, "hardware", `${b.id}.board.json`), "utf8")).productId)
        expect(new Set(ids).size).toBe(ids.length)
    })

    test(
        "devs build src/main.ts (cwd devs/) picks up and accepts both boards",
        () => {
            const r = devs(["-v", "build", "src/main.ts"], DEVS_DIR)
            expect(r.error).toBeUndefined()
            expect(r.status, r.out).toBe(0)
            // verbose log of compileBoards(): each board was found through its symlink and validated
            for (const spec of BOARDS) expect(r.out).toContain(`custom board: ${spec.id}`)
            const bytecode = join(DEVS_DIR, ".devicescript", "bin", "bytecode.devs")
            expect(existsSync(bytecode)).toBe(true)
            const size = statSync(bytecode).size
            expect(size).toBeGreaterThan(0)
            console.log(`devs/src/main.ts bytecode (boards ${BOARDS.map(b => b.id).join(", ")} in devs/boards/): ${size} bytes`)
        },
        TIMEOUT,
    )

    for (const spec of BOARDS)
        test(
            `a program importing @dsboard/${spec.id} gets typed pins; input-only pins are not outputs`,
            () => {
                const BOARD_FILE = join(ROOT, "hardware", `${spec.id}.board.json`)
                const board: BoardJson = JSON.parse(readFileSync(BOARD_FILE, "utf8"))
                const inputOnly = spec.inputs.find(l => INPUT_ONLY.includes(board.pins[l]))!
                // pins taken by the runtime's own services (i2c, led) are not in the typed `pins`
                const typedOutputs = spec.outputs.filter(l => !["SDA", "SCL", "LED"].includes(l))
                // A throw-away DeviceScript project with the same board, so nothing in devs/ is touched.
                const dir = mkdtempSync(join(tmpdir(), "coldtrace-board-"))
                try {
                    writeFileSync(join(dir, "devsconfig.json"), "{}\n")
                    mkdirSync(join(dir, "boards"))
                    symlinkSync(BOARD_FILE, join(dir, "boards", `${spec.id}.board.json`))
                    mkdirSync(join(dir, "src"))
                    writeFileSync(
                        join(dir, "src", "main.ts"),
                        [
                            `import * as ds from "@devicescript/core"`,
                            `import { pins } from "@dsboard/${spec.id}"`,
                            `const outs: ds.OutputPin[] = [${typedOutputs.map(l => `pins.${l}`).join(", ")}]`,
                            `const ins: ds.InputPin[] = [${spec.inputs.map(l => `pins.${l}`).join(", ")}]`,
                            `const vbat: ds.AnalogInPin = pins.VBAT`,
                            "console.log(`${outs.length} ${ins.length} ${vbat.gpio}`)",
                            ``,
                        ].join("\n"),
                    )
                    const ok = devs(["build", "src/main.ts"], dir)
                    expect(ok.status, ok.out).toBe(0)
                    expect(statSync(join(dir, ".devicescript", "bin", "bytecode.devs")).size).toBeGreaterThan(0)

                    writeFileSync(
                        join(dir, "src", "bad.ts"),
                        [
                            `import * as ds from "@devicescript/core"`,
                            `import { pins } from "@dsboard/${spec.id}"`,
                            `const o: ds.OutputPin = pins.${inputOnly}`,
                            "console.log(`${o.gpio}`)",
                            ``,
                        ].join("\n"),
                    )
                    const bad = devs(["build", "src/bad.ts"], dir)
                    expect(bad.status).toBe(101)
                    expect(bad.out).toContain("_outputPinBrand")
                } finally {
                    rmSync(dir, { recursive: true, force: true })
                }
            },
            TIMEOUT,
        )
})
