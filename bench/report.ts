/**
 * The results of `npm run bench`: their shape (what bench/results/*.json hold), the table and the
 * ratios printed at the end, and the SVG latency chart (drawn here, no dependency).
 */
import { Histogram, type HistogramJson } from "./hist.js";
import type { MachineInfo } from "./machine.js";

export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  hist: HistogramJson;
}

export function summarize(h: Histogram): LatencySummary {
  const r = (v: number): number => Math.round(v * 100) / 100;
  return {
    count: h.count,
    p50: r(h.quantile(0.5)),
    p95: r(h.quantile(0.95)),
    p99: r(h.quantile(0.99)),
    max: r(h.max),
    hist: h.toJSON(),
  };
}

export interface TargetResult {
  name: string;
  ok: boolean;
  failures: string[];
  startupMs?: number;
  users?: number;
  rooms?: number;
  gateways?: number;
  saturation?: {
    seconds: number;
    acked: number;
    sendsPerSec: number;
    deliveries: number;
    deliveriesPerSec: number;
    failedAttempts: number;
    /** Machine CPU (all processes, all cores) busy during the window, per acknowledged send. */
    machineCpuMsPerMsg: number;
    machineBusyPercent: number;
    /** CPU of the system under test's processes per acknowledged send. */
    serverCpuMsPerMsg: number;
    /** CPU of the load generator's processes per acknowledged send. */
    loadCpuMsPerMsg: number;
    /** CPU of MariaDB, RabbitMQ and FerretDB per acknowledged send (whoever else uses them included). */
    infraCpuMsPerMsg: number;
    /** The rest of the machine's busy time: work that is not the benchmark's. */
    otherCpuMsPerMsg: number;
    serverRssMiB: number;
  };
  open?: {
    ratePerSec: number;
    seconds: number;
    scheduled: number;
    acked: number;
    maxLagMs: number;
    failedAttempts: number;
    ack: LatencySummary;
    e2e: LatencySummary;
  };
  correctness?: {
    acked: number;
    stored: number | null;
    /** Acknowledged but not in the database. */
    lostInDb: number | null;
    /** In the database but never acknowledged (a duplicate or a phantom). */
    extraInDb: number | null;
    expectedDeliveries: number;
    held: number;
    missedLive: number;
    recoveredBySync: number;
    lost: number;
    duplicates: number;
    ackConflicts: number;
  };
  backlog?: {
    samples: { t: number; pending: number }[];
    maxDuring: number;
    /** At the end of the saturation window. */
    atLoadEnd: number;
    /** From the end of the saturation window until the outboxes were empty (null: not within the drain timeout). */
    drainAfterSaturationMs: number | null;
    final: number;
    drainedMs: number | null;
  };
  idle?: {
    requested: number;
    connected: number;
    failed: number;
    connectMs: number;
    socketsPerSec: number;
    rssBeforeMiB: number;
    rssAfterMiB: number;
    rssPerSocketKiB: number;
  };
  catchUp?: {
    messages: number;
    rooms: number;
    received: number;
    duplicates: number;
    connectMs: number;
    totalMs: number;
    syncCalls: number;
  };
  stops?: { name: string; code: number | null; signal: string | null }[];
}

export interface BenchResults {
  version: 1;
  startedAt: string;
  command: string;
  quick: boolean;
  options: Record<string, unknown>;
  machine: MachineInfo;
  totalSeconds: number;
  targets: TargetResult[];
  ratios: { nochat: string; baseline: string; sends: number; deliveries: number }[];
  ok: boolean;
}

const fmt = (n: number | undefined | null, digits = 0): string =>
  n === undefined || n === null || Number.isNaN(n)
    ? "–"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function ratios(targets: TargetResult[]): BenchResults["ratios"] {
  const out: BenchResults["ratios"] = [];
  for (const n of targets.filter((t) => t.name.startsWith("nochat") && t.saturation)) {
    for (const b of targets.filter((t) => t.name.startsWith("baseline") && t.saturation)) {
      out.push({
        nochat: n.name,
        baseline: b.name,
        sends: Math.round((n.saturation!.sendsPerSec / b.saturation!.sendsPerSec) * 1000) / 1000,
        deliveries: Math.round((n.saturation!.deliveriesPerSec / b.saturation!.deliveriesPerSec) * 1000) / 1000,
      });
    }
  }
  return out;
}

/** The results as Markdown tables (printed at the end and pasted into docs/BENCHMARKS.md). */
export function markdown(results: BenchResults): string {
  const rows = results.targets.map((t) => {
    const s = t.saturation;
    const o = t.open;
    const c = t.correctness;
    const b = t.backlog;
    const lat = (l: LatencySummary | undefined): string =>
      l && l.count ? `${fmt(l.p50, 1)} / ${fmt(l.p95, 1)} / ${fmt(l.p99, 1)}` : "–";
    return [
      t.name + (t.gateways && t.gateways > 1 ? ` (${t.gateways} gateways)` : ""),
      fmt(s?.sendsPerSec),
      fmt(s?.deliveriesPerSec),
      o ? fmt(o.ratePerSec) : "–",
      lat(o?.ack),
      lat(o?.e2e),
      c ? `${fmt(c.lost + (c.lostInDb ?? 0))} / ${fmt(c.duplicates + (c.extraInDb ?? 0) + c.ackConflicts)}` : "–",
      b
        ? `${fmt(b.atLoadEnd)} · ${b.drainAfterSaturationMs === null ? "–" : fmt(b.drainAfterSaturationMs / 1000, 1)} s · ${fmt(b.final)}`
        : "n/a",
      t.idle ? `${fmt(t.idle.connected)} · ${fmt(t.idle.rssPerSocketKiB, 1)}` : "–",
      t.catchUp ? fmt(t.catchUp.totalMs) : "–",
      s
        ? `${fmt(s.machineCpuMsPerMsg, 2)} = ${fmt(s.serverCpuMsPerMsg, 2)} + ${fmt(s.infraCpuMsPerMsg, 2)} + ${fmt(s.loadCpuMsPerMsg, 2)} + ${fmt(s.otherCpuMsPerMsg, 2)}`
        : "–",
      t.ok ? "ok" : "FAIL",
    ];
  });
  const head = [
    "target",
    "sends/s",
    "deliveries/s",
    "open-loop rate/s",
    "ack ms p50/p95/p99",
    "send→receive ms p50/p95/p99",
    "lost / dup",
    "outbox backlog after saturation · drained in · at end",
    "idle sockets · RSS KiB/socket",
    "catch-up 1,000 ms",
    "CPU ms/msg: machine = server + db/broker + load gen + other",
    "check",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
  if (results.ratios.length) {
    lines.push("", "| NoChat ÷ baseline | sends/s | deliveries/s |", "| --- | ---: | ---: |");
    for (const r of results.ratios)
      lines.push(`| ${r.nochat} ÷ ${r.baseline} | ${fmt(r.sends, 2)}× | ${fmt(r.deliveries, 2)}× |`);
  }
  return lines.join("\n");
}

// ---- the SVG chart ---------------------------------------------------------------------------------

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
const PERCENTILES = [0.5, 0.75, 0.9, 0.95, 0.99, 0.999];

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * Latency by percentile at each target's open-loop rate: send→receive as solid lines, ack as dashed,
 * the x axis in "nines" (50, 90, 99, 99.9 %), the y axis logarithmic in ms.
 */
export function latencySvg(results: BenchResults): string {
  const W = 900;
  const H = 420;
  const m = { left: 64, right: 300, top: 46, bottom: 52 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const series: { label: string; color: string; dashed: boolean; points: [number, number][] }[] = [];
  results.targets.forEach((t, i) => {
    if (!t.open) return;
    const color = COLORS[i % COLORS.length];
    for (const [kind, dashed] of [
      ["e2e", false],
      ["ack", true],
    ] as const) {
      const l = t.open[kind];
      if (!l.count) continue;
      const h = Histogram.from(l.hist);
      series.push({
        label: `${t.name} ${kind === "e2e" ? "send→receive" : "ack"} (${t.open.ratePerSec}/s)`,
        color,
        dashed,
        points: PERCENTILES.map((p) => [p, h.quantile(p)]),
      });
    }
  });
  const all = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...all, 1))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all, 10)));
  const nines = (p: number): number => -Math.log10(1 - p);
  const x = (p: number): number => m.left + ((nines(p) - nines(0.5)) / (nines(0.999) - nines(0.5))) * pw;
  const y = (v: number): number =>
    m.top + ph - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / Math.log10(hi / lo)) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${m.left}" y="20" font-size="14" font-weight="bold">Latency at 30 % of each target's saturation rate (open loop)</text>`,
    `<text x="${m.left}" y="36" fill="#555">${esc(`${results.machine.cores} cores, ${results.machine.ramGiB} GiB, ${results.machine.os} — ${results.startedAt.slice(0, 10)}`)}</text>`,
  );
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y(d).toFixed(1)}" y2="${y(d).toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${m.left - 6}" y="${(y(d) + 4).toFixed(1)}" text-anchor="end">${d >= 1 ? d : d.toFixed(2)} ms</text>`,
    );
  }
  for (const p of PERCENTILES) {
    out.push(
      `<line x1="${x(p).toFixed(1)}" x2="${x(p).toFixed(1)}" y1="${m.top}" y2="${m.top + ph}" stroke="#eee"/>`,
      `<text x="${x(p).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle">p${Math.round(p * 1000) / 10}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle" fill="#555">percentile (log scale of 1 − p)</text>`,
  );
  series.forEach((s, i) => {
    const d = s.points.map(([p, v], j) => `${j ? "L" : "M"}${x(p).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    out.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ""}/>`,
    );
    for (const [p, v] of s.points)
      out.push(`<circle cx="${x(p).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    const ly = m.top + 8 + i * 18;
    out.push(
      `<line x1="${m.left + pw + 12}" x2="${m.left + pw + 36}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ""}/>`,
      `<text x="${m.left + pw + 42}" y="${ly + 4}">${esc(s.label)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
