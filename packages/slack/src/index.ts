export * from './slack-notifier.js';
export * from './slack-message.js';
