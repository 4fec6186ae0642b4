import { createServer, type ServerResponse } from 'node:http';
import Database from 'better-sqlite3';
import { Pool } from 'pg';
import { POSTGRES_SEARCH_SQL, searchSqlite } from '../src/notes/search/notes-search.repository';
import { parseSearchQuery, toTsQuery } from '../src/notes/search/search-query';

/**
 * The bar for search: bare node:http and the driver running the app's own search SQL (first page, no
 * cursor) for the owner named in the `x-owner` header. No framework, no authentication, no highlight:
 * what the database and one core can do for a search at best.
 * `node dist-bench/bench/search-baseline.js <port>`, on DATABASE_URL.
 */
function main(): void {
  const port = Number(process.argv[2]);
  const url = process.env.DATABASE_URL!;
  const search = url.startsWith('sqlite:') ? sqliteSearch(url.slice('sqlite:'.length)) : postgresSearch(url);
  const json = (response: ServerResponse, status: number, body: unknown) =>
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  createServer((request, response) => {
    const params = new URL(request.url ?? '/', 'http://x').searchParams;
    const query = parseSearchQuery(params.get('q') ?? '');
    const owner = String(request.headers['x-owner']);
    search(owner, query, Number(params.get('limit') ?? 20) + 1).then(
      (rows) => json(response, 200, { items: rows.slice(0, -1), next_cursor: null }),
      () => json(response, 500, {}),
    );
  }).listen(port, '127.0.0.1', () => process.send?.('ready'));
}

type Search = (owner: string, query: ReturnType<typeof parseSearchQuery>, limit: number) => Promise<unknown[]>;

function sqliteSearch(path: string): Search {
  const db = new Database(path, { readonly: true });
  const statements = new Map<string, Database.Statement>();
  // The app's statements, each prepared once, run synchronously as better-sqlite3 runs them.
  const run = (sql: string, params: unknown[]) => {
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = db.prepare(sql)));
    return statement.all(...params);
  };
  return (owner, query, limit) => searchSqlite(run, owner, query, limit);
}

function postgresSearch(url: string): Search {
  const pool = new Pool({ connectionString: url, max: 10 });
  const text = POSTGRES_SEARCH_SQL.replace('/*cursor*/', '');
  return async (owner, query, limit) =>
    // Unnamed, as TypeORM sends it: planned for these values each time.
    (await pool.query<Record<string, unknown>>(text, [owner, toTsQuery(query), toTsQuery(query, true), limit])).rows;
}

main();
