import type { QueryRunner } from 'typeorm';

/**
 * The database triggers that feed `GET /api/sync/changes` (docs/sync.md). Every write that changes what a
 * client sees of a note or a clip, whichever code path makes it (a PATCH, a completion by the phone or the
 * janitor, an expiry, a delete, a note's cascade), bumps its owner's counter in `sync_owners` inside the
 * same transaction and stamps the row (or the deletion's tombstone) with the new value. Nothing in the
 * application can forget one.
 *
 * The counter is one row per owner, taken with an UPDATE: on Postgres that row lock is held until the
 * writer commits, so one owner's writers get their numbers in commit order; SQLite has one writer. A
 * reader that sees the counter at N therefore sees every change numbered up to N (see SyncRepository).
 *
 * Columns a client never sees (the janitor's `upload_check_at`, the upload's key and expiry, multipart
 * bookkeeping) change nothing in the feed.
 *
 * SQLite drops a table's triggers when TypeORM rebuilds the table (some column changes do): a later
 * migration that rebuilds `notes` or `audio_clips` on SQLite must call `installSyncTriggers` again. The
 * sync tests check that they are in place after every migration.
 */

/** What a client sees of a note (its response shape) and of a clip. */
export const NOTE_VISIBLE_COLUMNS = ['owner_id', 'title', 'body', 'version', 'updated_at'] as const;
export const CLIP_VISIBLE_COLUMNS = [
  'owner_id',
  'note_id',
  'status',
  'mime_type',
  'bytes',
  'duration_ms',
  'declared_duration_ms',
  'duration_source',
  'content_md5',
  'failure_reason',
  'storage_key',
  'updated_at',
  'completed_at',
  'completed_by',
] as const;

const TRIGGERED_TABLES = [
  { table: 'notes', type: 'note', columns: NOTE_VISIBLE_COLUMNS, version: 'OLD.version' },
  { table: 'audio_clips', type: 'audio_clip', columns: CLIP_VISIBLE_COLUMNS, version: 'NULL' },
] as const;

export const SQLITE_SYNC_TRIGGERS = TRIGGERED_TABLES.flatMap(({ table }) => [
  `${table}_sync_insert`,
  `${table}_sync_update`,
  `${table}_sync_delete`,
]);

export async function installSyncTriggers(queryRunner: QueryRunner): Promise<void> {
  if (queryRunner.connection.driver.options.type === 'postgres') await installPostgres(queryRunner);
  else await installSqlite(queryRunner);
}

export async function dropSyncTriggers(queryRunner: QueryRunner): Promise<void> {
  if (queryRunner.connection.driver.options.type === 'postgres') {
    for (const { table } of TRIGGERED_TABLES) {
      await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_sync_stamp ON ${table}`);
      await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_sync_tombstone ON ${table}`);
      await queryRunner.query(`DROP FUNCTION IF EXISTS ${table}_sync_stamp()`);
      await queryRunner.query(`DROP FUNCTION IF EXISTS ${table}_sync_tombstone()`);
    }
    await queryRunner.query('DROP FUNCTION IF EXISTS sync_next_seq(varchar)');
    return;
  }
  for (const name of SQLITE_SYNC_TRIGGERS) await queryRunner.query(`DROP TRIGGER IF EXISTS ${name}`);
}

async function installPostgres(queryRunner: QueryRunner): Promise<void> {
  // The owner's next number. The UPDATE's row lock is what orders one owner's writers (held to COMMIT).
  await queryRunner.query(`
    CREATE OR REPLACE FUNCTION sync_next_seq(owner varchar) RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE next_seq bigint;
    BEGIN
      -- One statement, so that a row deleted under it (an account deletion) makes a fresh one, never NULL.
      INSERT INTO sync_owners AS o (owner_id, seq, epoch, purged_seq)
        VALUES (owner, 1, md5(random()::text || clock_timestamp()::text || owner), 0)
        ON CONFLICT (owner_id) DO UPDATE SET seq = o.seq + 1
        RETURNING o.seq INTO next_seq;
      RETURN next_seq;
    END $$`);
  for (const { table, type, columns, version } of TRIGGERED_TABLES) {
    const changed = columns.map((column) => `NEW.${column} IS DISTINCT FROM OLD.${column}`).join(' OR ');
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${table}_sync_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' OR ${changed} THEN
          NEW.change_seq := sync_next_seq(NEW.owner_id);
        END IF;
        RETURN NEW;
      END $$`);
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION ${table}_sync_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO sync_tombstones (item_type, id, owner_id, version, deleted_at, change_seq)
          VALUES ('${type}', OLD.id, OLD.owner_id, ${version}, clock_timestamp(), sync_next_seq(OLD.owner_id))
          ON CONFLICT (item_type, id) DO UPDATE SET owner_id = excluded.owner_id, version = excluded.version,
            deleted_at = excluded.deleted_at, change_seq = excluded.change_seq;
        RETURN OLD;
      END $$`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_sync_stamp ON ${table}`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_sync_tombstone ON ${table}`);
    await queryRunner.query(
      `CREATE TRIGGER ${table}_sync_stamp BEFORE INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_sync_stamp()`,
    );
    await queryRunner.query(
      `CREATE TRIGGER ${table}_sync_tombstone AFTER DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_sync_tombstone()`,
    );
  }
}

async function installSqlite(queryRunner: QueryRunner): Promise<void> {
  const bump = (owner: string) => `
    INSERT OR IGNORE INTO sync_owners (owner_id, seq, epoch, purged_seq) VALUES (${owner}, 0, lower(hex(randomblob(16))), 0);
    UPDATE sync_owners SET seq = seq + 1 WHERE owner_id = ${owner};`;
  const current = (owner: string) => `(SELECT seq FROM sync_owners WHERE owner_id = ${owner})`;
  for (const { table, type, columns, version } of TRIGGERED_TABLES) {
    const changed = columns.map((column) => `NEW.${column} IS NOT OLD.${column}`).join(' OR ');
    for (const name of [`${table}_sync_insert`, `${table}_sync_update`, `${table}_sync_delete`])
      await queryRunner.query(`DROP TRIGGER IF EXISTS ${name}`);
    await queryRunner.query(`
      CREATE TRIGGER ${table}_sync_insert AFTER INSERT ON ${table} BEGIN
        ${bump('NEW.owner_id')}
        UPDATE ${table} SET change_seq = ${current('NEW.owner_id')} WHERE id = NEW.id;
      END`);
    // change_seq is not among the columns, so the trigger's own UPDATE does not fire it again.
    await queryRunner.query(`
      CREATE TRIGGER ${table}_sync_update AFTER UPDATE OF ${columns.join(', ')} ON ${table} WHEN ${changed} BEGIN
        ${bump('NEW.owner_id')}
        UPDATE ${table} SET change_seq = ${current('NEW.owner_id')} WHERE id = NEW.id;
      END`);
    // Fired by a note's ON DELETE CASCADE too, so a clip removed with its note gets its tombstone.
    await queryRunner.query(`
      CREATE TRIGGER ${table}_sync_delete AFTER DELETE ON ${table} BEGIN
        ${bump('OLD.owner_id')}
        INSERT OR REPLACE INTO sync_tombstones (item_type, id, owner_id, version, deleted_at, change_seq)
          VALUES ('${type}', OLD.id, OLD.owner_id, ${version}, strftime('%Y-%m-%d %H:%M:%f', 'now'), ${current('OLD.owner_id')});
      END`);
  }
}
