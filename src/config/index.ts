/** naq configuration: schema, loading (defaults → file → env → flags), display and starter files. */
export {
  configSchema,
  connectionSchema,
  queueSettingsSchema,
  queueOverrideSchema,
  defaultConfig,
  queueSettings,
  SECRET_KEYS,
  type NaqConfig,
  type NaqConfigInput,
  type ConnectionConfig,
  type QueueSettings,
} from "./schema.js";
export {
  loadConfig,
  formatIssue,
  InvalidConfigError,
  FLAG_NAMES,
  SEARCH_PLACES,
  type ConfigIssue,
  type ConfigOverrides,
  type LoadConfigOptions,
  type LoadedConfig,
  type Source,
} from "./load.js";
export { ENV_VARS, CONFIG_FILE_ENV, type EnvVar } from "./env.js";
export {
  describeConfig,
  describeSource,
  redactedConfig,
  redactUrl,
  redactValue,
  isSecretKey,
  REDACTED,
  type ConfigEntry,
} from "./show.js";
export { starterConfig, STARTER_FILE_NAMES, type StarterFormat } from "./starter.js";
