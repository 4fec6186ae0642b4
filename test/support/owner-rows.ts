import type { TestApp } from './test-app';

/**
 * Every table that has an `owner_id` column, read from the database's own schema (not from the code):
 * a table added later is found here whether or not the code that deletes an account knows of it.
 */
export async function ownerColumnTables(testApp: TestApp): Promise<string[]> {
  const postgres = testApp.env.DATABASE_URL.startsWith('postgres');
  const rows = (await testApp.dataSource.query(
    postgres
      ? "SELECT table_name AS name FROM information_schema.columns WHERE column_name = 'owner_id' AND table_schema = current_schema()"
      : "SELECT m.name AS name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND p.name = 'owner_id'",
  )) as { name: string }[];
  return rows.map((row) => row.name).sort();
}

/** The owner's rows in each table that has an owner column (only those with some). */
export async function rowsOfOwner(testApp: TestApp, ownerId: string): Promise<Record<string, number>> {
  const postgres = testApp.env.DATABASE_URL.startsWith('postgres');
  const found: Record<string, number> = {};
  for (const table of await ownerColumnTables(testApp)) {
    const [row] = await testApp.dataSource.query(
      `SELECT COUNT(*) AS count FROM "${table}" WHERE owner_id = ${postgres ? '$1' : '?'}`,
      [ownerId],
    );
    if (Number(row.count) > 0) found[table] = Number(row.count);
  }
  return found;
}
