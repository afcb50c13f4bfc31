// The SQLite ingest database as the simulator and tests use it: the better-sqlite3 handle
// (`srv.db` of a server on SQLite) and sync queries over it. The queries themselves live in
// store/sqlite.ts, the one place that holds the SQLite schema and SQL.
export {
    addReader,
    checkpointsFor,
    cosignaturesFor,
    latestCheckpoint,
    getDevice,
    headAt,
    lastStored,
    listReaders,
    maxStoredBelow,
    openDb,
    readerByKey,
    recordsFor,
    registerDevice,
    removeReader,
    retireDevice,
    segmentsFor,
    unexplainedSegments,
    type Db,
} from "./store/sqlite.js"
export { READER_KEY_PREFIX, readerKeyHash } from "./store/common.js"
export type {
    CheckpointRow,
    CosignatureRow,
    DeviceRow,
    ReaderInput,
    ReaderRow,
    RecordRow,
    SegmentRow,
    SegmentStatus,
    Stored,
} from "./store/store.js"
