import { describe, it, expect } from "vitest"
import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import { ROOT } from "../src/sim/vm.js"

// One code style for the whole tree (.prettierrc.json): `npm run format` fixes what this finds.
describe("code style", () => {
    it("every file is formatted with the project's Prettier configuration", () => {
        const prettier = createRequire(import.meta.url).resolve("prettier/bin/prettier.cjs")
        const r = spawnSync(process.execPath, [prettier, "--check", "--log-level", "warn", "."], { cwd: ROOT, encoding: "utf8" })
        expect(r.stdout + r.stderr, "run `npm run format`").toBe("")
        expect(r.status).toBe(0)
    })
})
