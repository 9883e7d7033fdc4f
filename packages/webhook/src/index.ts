export * from './discord-notifier.js';
export * from './webhook-notifier.js';
export * from './webhook-signature.js';
export * from './heartbeat-notifier.js';
export * from './notifier-from-url.js';
export { webhookNotifierEnv, type WebhookEnvConfig } from './env.js';
