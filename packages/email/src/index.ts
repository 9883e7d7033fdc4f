export * from './email-notifier.js';
export * from './email-options.js';
export { emailNotifierEnv, defaultEmailFrom, type EmailEnvConfig, type SmtpEnvConfig } from './env.js';
