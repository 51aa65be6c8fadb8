/**
 * better-sqlite3 (already a dependency of NoChat) with the few types the benchmark uses: the
 * package ships no declarations and @types/better-sqlite3 is not a dependency.
 */
import { createRequire } from "node:module";

export interface SqliteStatement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  pragma(sql: string): unknown;
  exec(sql: string): void;
  close(): void;
}

type SqliteConstructor = new (
  file: string,
  options?: { readonly?: boolean; fileMustExist?: boolean },
) => SqliteDatabase;

const Database = createRequire(__filename)("better-sqlite3") as SqliteConstructor;

export function openSqlite(file: string, options?: { readonly?: boolean; fileMustExist?: boolean }): SqliteDatabase {
  return new Database(file, options);
}
