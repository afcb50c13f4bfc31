import * as ds from "@devicescript/core"
import { tombstoneProbe } from "./tombstone"

await tombstoneProbe(0)
ds.restart()
