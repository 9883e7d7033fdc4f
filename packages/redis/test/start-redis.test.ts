import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisReplyError, startRedis } from '@scholaria/backup-testkit';

describe('testkit startRedis', () => {
  it('starts on loopback with a password and ACL users, keeps data across restart only when asked, and cleans up', async () => {
    const server = await startRedis({ password: 'pw with spaces/:@', aclUsers: ['reader on >reader-pw ~* +@read +ping +select'], args: ['--save', '60 1'] });
    try {
      expect(server.host).toBe('127.0.0.1');
      expect(server.url(2)).toMatch(/^redis:\/\/:pw%20with%20spaces%2F%3A%40@127\.0\.0\.1:\d+\/2$/);
      expect(await server.command('PING')).toBe('PONG');
      const r = new Redis(server.url(2));
      await r.set('k', 'v');
      await r.call('SAVE');
      r.disconnect();

      const reader = new Redis({ host: server.host, port: server.port, username: 'reader', password: 'reader-pw', db: 2, enableReadyCheck: false });
      expect(await reader.get('k')).toBe('v');
      await expect(reader.set('k', 'w')).rejects.toThrow(/NOPERM/);
      reader.disconnect();

      await server.restart();
      const again = new Redis(server.url(2));
      expect(await again.get('k')).toBe('v');
      again.disconnect();
      // ACL users come back after a restart too.
      const reader2 = new Redis({ host: server.host, port: server.port, username: 'reader', password: 'reader-pw', db: 2, enableReadyCheck: false });
      expect(await reader2.get('k')).toBe('v');
      reader2.disconnect();
    } finally {
      await server.stop();
    }
    expect(existsSync(server.dir)).toBe(false);
    await expect(server.command('PING')).rejects.toThrow();
  });

  it('has no persistence by default and reports a refused command as a reply error', async () => {
    const server = await startRedis();
    try {
      expect(await server.command('CONFIG', 'GET', 'save')).toEqual([Buffer.from('save'), Buffer.from('')]);
      expect(await server.command('NOSUCHCOMMAND')).toBeInstanceOf(RedisReplyError);
    } finally {
      await server.stop();
    }
  });

  it('fails clearly when redis-server cannot start', async () => {
    await expect(startRedis({ args: ['--no-such-option', 'x'] })).rejects.toThrow(/redis-server exited during start/);
  });
});
