import { defineConfig } from "vitest/config"

export default defineConfig({
    test: {
        include: ["test/**/*.test.ts"],
        // simulator runs share the fixed Jacdac ports 8081/8082 and the devs/ build output:
        // files that start a VM or build firmware run one at a time
        fileParallelism: false,
        testTimeout: 120_000,
        hookTimeout: 120_000,
    },
})
