/** `/api/health`: which NoChat services and nodes the registry sees as available right now. */
import type { ServiceBroker } from "moleculer";

export interface Health {
  status: "ok" | "degraded";
  services: string[];
  missing: string[];
  /** Admins only, unless HEALTH_DETAILS=public. */
  nodes?: { id: string; local: boolean; services: string[] }[];
}

interface ServiceItem {
  name: string;
  nodeID: string;
}
interface NodeItem {
  id: string;
  local: boolean;
  available: boolean;
}

export function healthOf(registry: ServiceBroker["registry"], required: readonly string[]): Health {
  const services = (
    registry.getServiceList({
      onlyAvailable: true,
      skipInternal: true,
    }) as ServiceItem[]
  ).filter((s) => !s.name.startsWith("$"));
  const nodes = (
    registry.getNodeList({
      onlyAvailable: true,
      withServices: false,
    }) as NodeItem[]
  ).map((n) => ({
    id: n.id,
    local: n.local,
    services: [...new Set(services.filter((s) => s.nodeID === n.id).map((s) => s.name))].sort(),
  }));
  const names = [...new Set(services.map((s) => s.name))].sort();
  const missing = required.filter((name) => !names.includes(name));
  return {
    status: missing.length === 0 ? "ok" : "degraded",
    services: names,
    missing,
    nodes,
  };
}
