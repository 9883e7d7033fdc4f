#!/usr/bin/env node
/**
 * The stock `scholaria-backup` command with this example's adapters listed next to the shipped
 * ones: `FILES_DIR=/srv/files FLAT_STORAGE_DIR=/mnt/objects node --import tsx src/bin.ts backup`.
 */
import { runCli, SHIPPED_ADAPTERS } from '@scholaria/backup-cli';
import { filesSourceEnv, flatStorageEnv } from './env.js';

process.exitCode = await runCli(process.argv.slice(2), { adapters: [...SHIPPED_ADAPTERS, filesSourceEnv, flatStorageEnv] });
