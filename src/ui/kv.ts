/**
 * A tiny key-value store on IndexedDB. Unlike localStorage, whose copy in each tab's process is
 * synchronized after the fact, a committed IndexedDB write is what the next reader in any tab sees:
 * the one property the cross-tab token refresh needs.
 */
const DB = "nochat";
const STORE = "kv";

let opened: Promise<IDBDatabase> | null = null;

function db(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => {
      opened = null;
      reject(req.error ?? new Error("IndexedDB unavailable"));
    };
  });
  return opened;
}

function run<T>(mode: IDBTransactionMode, op: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return db().then(
    (d) =>
      new Promise<T>((resolve, reject) => {
        const tx = d.transaction(STORE, mode);
        const req = op(tx.objectStore(STORE));
        // Resolve on commit, not on the request: the next lock holder must see the write.
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
      }),
  );
}

export const kv = {
  get: <T>(key: string) => run<T | undefined>("readonly", (s) => s.get(key) as IDBRequest<T | undefined>),
  set: (key: string, value: unknown) => run("readwrite", (s) => s.put(value, key)).then(() => undefined),
  delete: (key: string) => run("readwrite", (s) => s.delete(key)).then(() => undefined),
};
