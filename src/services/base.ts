/**
 * BaseService and ServiceManager: the lifecycle every naq service shares.
 *
 * A ServiceManager is one scope (one CLI invocation, one Worker, one Queue). It creates
 * each service lazily, once, after creating the services it declares in `deps`, and
 * closes them in reverse creation order. Dependencies are declared, not discovered:
 *
 *   class StreamService extends BaseService {
 *     static readonly deps = [ConnectionService] as const;
 *     constructor(ctx: ServiceContext, private readonly connection: ConnectionService) { super(ctx); }
 *   }
 */
import type { NaqConfig } from "../config/schema.js";
import { coerceError, ServiceError } from "../model/errors.js";
import { namesFor, type Names } from "../model/naming.js";

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** What every service receives: the validated config, derived names, and a logger. */
export interface ServiceContext {
  readonly config: NaqConfig;
  readonly names: Names;
  readonly logger: Logger;
  /** Connections of one-shot commands fail fast; long-lived processes reconnect forever. */
  readonly longLived: boolean;
}

export abstract class BaseService implements AsyncDisposable {
  private initializing?: Promise<void>;
  private cleaning?: Promise<void>;

  constructor(protected readonly ctx: ServiceContext) {}

  get config(): NaqConfig {
    return this.ctx.config;
  }

  get names(): Names {
    return this.ctx.names;
  }

  get initialized(): boolean {
    return this.initializing !== undefined && this.cleaning === undefined;
  }

  /** Idempotent; concurrent callers share one initialization. A failed one may be retried. */
  initialize(): Promise<void> {
    if (this.cleaning) return Promise.reject(new ServiceError(`${this.constructor.name} is closed`));
    this.initializing ??= this.onInitialize().catch((err: unknown) => {
      this.initializing = undefined;
      throw err;
    });
    return this.initializing;
  }

  /** Idempotent; the first call does the work, later calls wait for it. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.initializing
      ? this.initializing.then(
          () => this.onCleanup(),
          () => undefined,
        )
      : Promise.resolve();
    return this.cleaning;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.cleanup();
  }

  /** Subclass hook: acquire resources. */
  protected async onInitialize(): Promise<void> {}

  /** Subclass hook: release resources. Runs only if initialization succeeded. */
  protected async onCleanup(): Promise<void> {}
}

/** A service class the manager can build: its constructor takes the context and its deps, in order. */
export interface ServiceClass<T extends BaseService = BaseService> {
  // Constructor parameters are checked bivariantly, so concrete dep types fit `never`.
  new (ctx: ServiceContext, ...deps: never[]): T;
  readonly deps?: readonly ServiceClass[];
}

export interface OpenOptions {
  logger?: Logger;
  longLived?: boolean;
}

/** A dependency cycle reachable from `cls` (e.g. [A, B, A]), or undefined when there is none. */
function findCycle(cls: ServiceClass, chain: readonly ServiceClass[], done = new Set<ServiceClass>()): ServiceClass[] | undefined {
  if (chain.includes(cls)) return [...chain.slice(chain.indexOf(cls)), cls];
  if (done.has(cls)) return undefined;
  for (const dep of cls.deps ?? []) {
    const cycle = findCycle(dep, [...chain, cls], done);
    if (cycle) return cycle;
  }
  done.add(cls);
  return undefined;
}

export class ServiceManager implements AsyncDisposable {
  private readonly pending = new Map<ServiceClass, Promise<BaseService>>();
  /** Services in the order their initialization finished: dependencies before dependents. */
  private readonly created: BaseService[] = [];
  private closing?: Promise<void>;
  readonly ctx: ServiceContext;

  private constructor(config: NaqConfig, options: OpenOptions) {
    this.ctx = {
      config,
      names: namesFor(config.namespace),
      logger: options.logger ?? silentLogger,
      longLived: options.longLived ?? false,
    };
  }

  /** Opens a scope. Nothing connects until a service that needs NATS is asked for. */
  static async open(config: NaqConfig, options: OpenOptions = {}): Promise<ServiceManager> {
    return new ServiceManager(config, options);
  }

  get config(): NaqConfig {
    return this.ctx.config;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** The scope's one instance of `cls`, created and initialized on first request. */
  get<T extends BaseService>(cls: ServiceClass<T>): Promise<T> {
    return this.resolve(cls, []) as Promise<T>;
  }

  private resolve(cls: ServiceClass, chain: readonly ServiceClass[]): Promise<BaseService> {
    if (this.closing) return Promise.reject(new ServiceError(`service scope is closed; cannot get ${cls.name}`));
    // Check the declared graph before building anything: a cycle found only while building
    // is missed when two gets enter it from different ends at once, and both would wait
    // forever on each other's pending build.
    const cycle = findCycle(cls, chain);
    if (cycle) return Promise.reject(new ServiceError(`service dependency cycle: ${cycle.map((c) => c.name).join(" -> ")}`));
    let promise = this.pending.get(cls);
    if (!promise) {
      promise = this.build(cls, [...chain, cls]);
      this.pending.set(cls, promise);
      // A failed build may be retried by a later get().
      promise.catch(() => {
        if (this.pending.get(cls) === promise) this.pending.delete(cls);
      });
    }
    return promise;
  }

  private async build(cls: ServiceClass, chain: readonly ServiceClass[]): Promise<BaseService> {
    const deps: BaseService[] = [];
    for (const dep of cls.deps ?? []) deps.push(await this.resolve(dep, chain));
    const service = new cls(this.ctx, ...(deps as never[]));
    await service.initialize();
    if (this.closing) {
      await service.cleanup();
      throw new ServiceError(`service scope closed while ${cls.name} was starting`);
    }
    this.created.push(service);
    return service;
  }

  /** Services created so far, in creation order (for tests and diagnostics). */
  get services(): readonly BaseService[] {
    return [...this.created];
  }

  /**
   * Closes every created service in reverse creation order. A throwing cleanup does not
   * stop the others; all failures are raised together. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Let in-flight builds settle so nothing initialized escapes cleanup.
      await Promise.allSettled([...this.pending.values()]);
      const errors: Error[] = [];
      for (const service of [...this.created].reverse()) {
        try {
          await service.cleanup();
        } catch (err) {
          errors.push(coerceError(err));
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) {
        throw new AggregateError(errors, `${errors.length} services failed to close: ${errors.map((e) => e.message).join("; ")}`);
      }
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
