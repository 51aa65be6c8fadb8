/**
 * What ops/ ships for Prometheus and Grafana (issue 12, item 2), checked without servers:
 * - `promtool check rules ops/prometheus/alerts.yml` passes, the rules' unit tests
 *   (`promtool test rules ops/prometheus/alerts.test.yml`) pass, and the example
 *   ops/prometheus/prometheus.yml is a valid configuration. promtool comes with Debian's
 *   `prometheus` package (.ci/run installs it); without it these skip, and fail under CI=true.
 * - ops/grafana/*.json parse as dashboards, every query names only metrics NoChat or Moleculer
 *   exports, and every NoChat metric is on the dashboard; the alerts name only exported metrics too.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { METRIC as MOLECULER_METRIC } from "moleculer";
import { NOCHAT_HISTOGRAMS, NOCHAT_METRIC_NAMES } from "../../src/infra/metrics.js";
import { OPS_DIR, runOk, toolsSkip } from "../support/ops.js";

const PROMETHEUS_DIR = path.join(OPS_DIR, "prometheus");
const GRAFANA_DIR = path.join(OPS_DIR, "grafana");

/** Every series name a scrape of NoChat can show (Moleculer's own: dots become underscores). */
function exportedNames(): Set<string> {
  const names = new Set<string>();
  const histogram = (name: string) => {
    for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
  };
  for (const name of NOCHAT_METRIC_NAMES) names.add(name);
  for (const name of NOCHAT_HISTOGRAMS) histogram(name);
  for (const value of Object.values(MOLECULER_METRIC as Record<string, unknown>)) {
    if (typeof value !== "string" || !value.includes(".")) continue;
    const name = value.replace(/[.-]/g, "_");
    names.add(name);
    // Moleculer's histograms (request and event times) with their series.
    if (name.endsWith("_time")) histogram(name);
  }
  return names;
}

/** The NoChat and Moleculer metric names a PromQL text uses. */
function metricNamesIn(promql: string): string[] {
  return [...promql.matchAll(/\b(?:nochat|moleculer)_[a-z0-9_]+/g)].map((m) => m[0]);
}

test("promtool: alerts.yml passes `check rules` and its unit tests; prometheus.yml is valid", async (t) => {
  if (toolsSkip(["promtool"], t)) return;
  await runOk("promtool", ["check", "rules", path.join(PROMETHEUS_DIR, "alerts.yml")]);
  await runOk("promtool", ["test", "rules", "alerts.test.yml"], { cwd: PROMETHEUS_DIR });
  await runOk("promtool", ["check", "config", "prometheus.yml"], { cwd: PROMETHEUS_DIR });
});

test("alerts.yml names only exported metrics, and covers backlog, missing services, errors and ack latency", () => {
  const text = readFileSync(path.join(PROMETHEUS_DIR, "alerts.yml"), "utf8");
  const exported = exportedNames();
  const used = metricNamesIn(text);
  for (const name of used) assert.ok(exported.has(name), `alerts.yml: ${name} is not a metric NoChat exports`);
  for (const name of [
    "nochat_outbox_backlog",
    "nochat_service_instances",
    "moleculer_request_error_total",
    "nochat_send_ack_seconds_bucket",
  ]) {
    assert.ok(used.includes(name), `alerts.yml has a rule on ${name}`);
  }
});

test("the Grafana dashboards parse, query only exported metrics, and show every NoChat metric", () => {
  const files = readdirSync(GRAFANA_DIR).filter((f) => f.endsWith(".json"));
  assert.ok(files.length > 0, "a dashboard under ops/grafana/");
  const exported = exportedNames();
  const shown = new Set<string>();
  for (const file of files) {
    const dashboard = JSON.parse(readFileSync(path.join(GRAFANA_DIR, file), "utf8")) as {
      title?: string;
      uid?: string;
      panels?: { title?: string; targets?: { expr?: string }[] }[];
      templating?: { list?: { query?: string | { query?: string } }[] };
    };
    assert.ok(dashboard.title && dashboard.uid, `${file}: a title and a uid`);
    assert.ok((dashboard.panels ?? []).length > 0, `${file}: panels`);
    const queries: string[] = [];
    for (const panel of dashboard.panels ?? []) {
      const exprs = (panel.targets ?? []).map((target) => target.expr ?? "");
      assert.ok(exprs.length > 0 && exprs.every(Boolean), `${file}: panel "${panel.title}" has queries`);
      queries.push(...exprs);
    }
    for (const variable of dashboard.templating?.list ?? []) {
      const query = typeof variable.query === "string" ? variable.query : (variable.query?.query ?? "");
      queries.push(query);
    }
    for (const query of queries) {
      for (const name of metricNamesIn(query)) {
        assert.ok(exported.has(name), `${file}: ${name} (in ${query}) is not a metric NoChat exports`);
        shown.add(name.replace(/_(bucket|sum|count)$/, ""));
      }
    }
  }
  for (const name of NOCHAT_METRIC_NAMES) assert.ok(shown.has(name), `a dashboard shows ${name}`);
});
