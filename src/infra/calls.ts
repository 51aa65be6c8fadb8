/**
 * The one way a service calls another: `call(ctx, "users.getMany", { ids })`, checked against
 * InternalActions (src/contracts/actions.ts) — the name, the params and the result — so a renamed
 * action or field is a type error. `via` is the calling Context (its request id, meta and
 * tracing go along) or, outside a request, the broker.
 */
import type { CallingOptions, Context } from "moleculer";
import type { InternalActionName, ParamsOf, ResultOf } from "../contracts/actions.js";
import type { CallMeta } from "./permissions.js";

interface Caller {
  call<T, P>(actionName: string, params: P, opts?: CallingOptions): Promise<T>;
}

export function call<N extends InternalActionName>(
  via: Caller,
  action: N,
  params: ParamsOf<N>,
  opts?: CallingOptions,
): Promise<ResultOf<N>> {
  return via.call<ResultOf<N>, ParamsOf<N>>(action, params, opts);
}

/** What an action may set for the gateway's answer (moleculer-web reads `$`-prefixed meta). */
export interface ResponseMeta {
  $statusCode?: number;
  $location?: string;
}

/** The Context of action N's handler: its params from InternalActions, the caller in meta. */
export type ActionContext<N extends InternalActionName> = Context<ParamsOf<N>, CallMeta & ResponseMeta>;
