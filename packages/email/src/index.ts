export * from './email-notifier.js';
export * from './email-options.js';
