/** What the benchmark reads from the machine: /proc (CPU time, RSS), the fd limit, a description. */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

/** Clock ticks per second of /proc/stat and /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const HZ = 100;

/** Machine CPU time so far (all cores), ms: busy (not idle or iowait) and total. */
export function machineCpu(): { busyMs: number; totalMs: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busyMs: ((total - idle - iowait) * 1000) / HZ, totalMs: (total * 1000) / HZ };
}

/** CPU time (user + system) of one process so far, ms; 0 when it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / HZ;
  } catch {
    return 0;
  }
}

/** Resident set size of one process, bytes; 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The soft limit on open files that processes started from here inherit (`ulimit -n`). */
export function fdLimit(): number {
  const res = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" });
  const n = Number(res.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  ramGiB: number;
  os: string;
  kernel: string;
  node: string;
  fdLimit: number;
  /** 1-minute load average when the run began: other work on the machine. */
  loadAverageAtStart: number;
}

export function machineInfo(): MachineInfo {
  let osName = `${os.type()} ${os.release()}`;
  try {
    osName = /PRETTY_NAME="([^"]+)"/.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? osName;
  } catch {
    // not Linux-like: keep os.type()
  }
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: osName,
    kernel: os.release(),
    node: process.version,
    fdLimit: fdLimit(),
    loadAverageAtStart: Math.round(os.loadavg()[0] * 100) / 100,
  };
}

/** The database, broker and document-store servers on this machine (shared: other users' work counts too). */
const INFRA = /^(mariadbd|mysqld|beam\.smp|epmd|ferretdb.*)$/;

/** Pids of the processes INFRA names: MariaDB, RabbitMQ (Erlang), FerretDB. */
export function infraPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (INFRA.test(readFileSync(`/proc/${entry}/comm`, "utf8").trim())) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
