/**
 * Holds SQLite's exclusive lock on a file for a while, as another process
 * writing a KV file would: `deno run -A lock_file.ts <path> <ms>`. Prints
 * `locked` once it holds the lock.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

const [path, ms] = Deno.args;
const db = new DatabaseSync(path);
db.exec("PRAGMA busy_timeout = 5000");
db.exec("BEGIN EXCLUSIVE");
console.log("locked");
await new Promise((resolve) => setTimeout(resolve, Number(ms)));
db.exec("ROLLBACK");
db.close();
