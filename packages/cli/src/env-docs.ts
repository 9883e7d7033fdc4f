import { envGroupsOf, envTableMarkdown, type AnyAdapterDescriptor } from '@scholaria/backup-core';
import { envDescriptorsOf, SHIPPED_ADAPTERS } from './adapters.js';

/** The env-variable tables of docs/configuration.md (English) and docs/ko/configuration.md (`ko`). */
export function envDocsTable(lang: 'en' | 'ko' = 'en', adapters: readonly AnyAdapterDescriptor[] = SHIPPED_ADAPTERS): string {
  const groups = envGroupsOf(envDescriptorsOf(adapters));
  return lang === 'ko'
    ? envTableMarkdown(groups, { variable: '변수', default: '기본값', meaning: '의미', none: '없음' })
    : envTableMarkdown(groups);
}
