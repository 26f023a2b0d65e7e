/**
 * TopologyService: naq's whole set of streams and buckets at once — create/update them
 * (`naq stream init`) and compare them with the server (`naq doctor`).
 */
import { topology, bucketStreamSpec, type StreamSpec } from "../model/topology.js";
import { BaseService, type ServiceContext } from "./base.js";
import { StreamService, type EnsureResult, type FieldChange } from "./streams.js";

export interface TopologyItem {
  kind: "stream" | "bucket";
  /** The stream or bucket name as users know it. */
  name: string;
  /** The underlying stream name (KV_<bucket> for buckets). */
  stream: string;
  role: string;
  spec: StreamSpec;
}

export interface TopologyCheck extends TopologyItem {
  exists: boolean;
  drift: FieldChange[];
}

export class TopologyService extends BaseService {
  static readonly deps = [StreamService] as const;

  constructor(
    ctx: ServiceContext,
    private readonly streams: StreamService,
  ) {
    super(ctx);
  }

  items(): TopologyItem[] {
    const t = topology(this.config, this.names);
    return [
      ...t.streams.map((s) => ({ kind: "stream" as const, name: s.name, stream: s.name, role: s.role, spec: s })),
      ...t.buckets.map((b) => {
        const spec = bucketStreamSpec(b);
        return { kind: "bucket" as const, name: b.bucket, stream: spec.name, role: b.role, spec };
      }),
    ];
  }

  /** Creates or updates everything; stops at the first incompatible stream. */
  async init(): Promise<Array<TopologyItem & EnsureResult>> {
    const results: Array<TopologyItem & EnsureResult> = [];
    for (const item of this.items()) results.push({ ...(await this.streams.ensure(item.spec)), ...item });
    return results;
  }

  async check(): Promise<TopologyCheck[]> {
    return Promise.all(
      this.items().map(async (item) => {
        const drift = await this.streams.drift(item.spec);
        return { ...item, exists: drift !== undefined, drift: drift ?? [] };
      }),
    );
  }
}
