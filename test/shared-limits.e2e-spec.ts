import { describeIfLeg } from './harness/legs';
import { REDIS_LEG, startRedisServer, type RedisProcess } from './harness/redis';
import { Phone } from './support/phone';
import { startTestApp, type TestApp } from './support/test-app';

const LIMIT = 10;
const UPLOAD_LIMIT = 3;

/** Sends `count` requests from one user, alternating between the instances; returns the statuses. */
async function alternate(phones: Phone[], count: number, path = '/api/notes'): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i += 1) statuses.push((await phones[i % phones.length].get(path)).status);
  return statuses;
}

async function twoInstances(env: Record<string, string>): Promise<[TestApp, TestApp]> {
  const first = await startTestApp({
    database: 'sqlite',
    storage: 'local',
    env: { RATE_LIMIT_PER_MINUTE: String(LIMIT), UPLOAD_RATE_LIMIT_PER_MINUTE: String(UPLOAD_LIMIT), ...env },
  });
  const second = await startTestApp({ database: 'sqlite', storage: 'local', sameDeploymentAs: first });
  return [first, second];
}

describeIfLeg(REDIS_LEG)('rate limits shared through Redis by two instances', () => {
  let apps: TestApp[] = [];

  afterEach(async () => {
    for (const app of apps.reverse()) await app.close();
    apps = [];
  });

  it('allows one user the limit once across both instances, not once per instance', async () => {
    apps = await twoInstances({ REDIS_URL: process.env.TEST_REDIS_URL! });
    const alice = await Promise.all(apps.map((app) => app.phone('alice')));
    const statuses = await alternate(alice, LIMIT + 4);
    expect(statuses.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(200));
    expect(statuses.slice(LIMIT)).toEqual([429, 429, 429, 429]);
    const refused = await alice[1].get('/api/notes');
    expect(refused.body.error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another user has a budget of their own.
    expect((await (await apps[0].phone('bob')).get('/api/notes')).status).toBe(200);
  });

  it('shares the stricter upload limit too', async () => {
    apps = await twoInstances({ REDIS_URL: process.env.TEST_REDIS_URL! });
    const alice = await Promise.all(apps.map((app) => app.phone('alice')));
    const statuses: number[] = [];
    for (let i = 0; i < UPLOAD_LIMIT + 2; i += 1) {
      const created = await alice[i % 2].post('/api/audio-clips', {
        mime_type: 'audio/wav',
        bytes: 10,
        duration_ms: 1,
      });
      statuses.push(created.status);
    }
    expect(statuses).toEqual([201, 201, 201, 429, 429]);
  });

  it('counts failed sign-ins and forged storage URLs from one address once across both instances', async () => {
    apps = await twoInstances({ REDIS_URL: process.env.TEST_REDIS_URL! });
    // A real upload URL of the first instance, its signature replaced: the local store refuses it (403).
    const owner = await apps[0].phone('owner');
    const created = await owner.post('/api/audio-clips', { mime_type: 'audio/ogg', bytes: 3, duration_ms: 1 });
    const forged = new URL(created.body.upload.url);
    forged.searchParams.set('signature', 'A'.repeat(43));
    const attempts = [
      () => new Phone(apps[0].baseUrl, 'garbage').get('/api/notes'),
      async () => {
        const url = new URL(forged);
        url.host = new URL(apps[1].baseUrl).host;
        const response = await fetch(url, { method: 'PUT', headers: { 'content-type': 'audio/ogg' }, body: 'abc' });
        return { status: response.status, body: await response.json() };
      },
    ];
    const statuses: number[] = [];
    let last: { status: number; body: any } | undefined;
    for (let i = 0; i < LIMIT + 4; i += 1) {
      last = await attempts[i % attempts.length]();
      statuses.push(last.status);
    }
    // One budget for the address: a garbage token on one instance and a forged URL on the other spend it together.
    expect(statuses.slice(0, LIMIT)).toEqual(Array.from({ length: LIMIT }, (_, i) => (i % 2 === 0 ? 401 : 403)));
    expect(statuses.slice(LIMIT)).toEqual([429, 429, 429, 429]);
    expect(last!.body.error.code).toBe('RATE_LIMITED');
    // A signed-in user on the same address keeps a budget of their own, on either instance.
    for (const app of apps) expect((await (await app.phone('someone')).get('/api/notes')).status).toBe(200);
  });

  it('without REDIS_URL, each instance counts failed sign-ins on its own (what sharing fixes)', async () => {
    apps = await twoInstances({});
    const statuses: number[] = [];
    for (let i = 0; i < 2 * LIMIT + 2; i += 1) {
      statuses.push((await new Phone(apps[i % 2].baseUrl, 'garbage').get('/api/notes')).status);
    }
    expect(statuses.filter((status) => status === 401)).toHaveLength(2 * LIMIT);
    expect(statuses.slice(2 * LIMIT)).toEqual([429, 429]);
  });

  it('without REDIS_URL, each instance counts on its own (what sharing fixes)', async () => {
    apps = await twoInstances({});
    const alice = await Promise.all(apps.map((app) => app.phone('alice')));
    const statuses = await alternate(alice, 2 * LIMIT + 2);
    expect(statuses.filter((status) => status === 200)).toHaveLength(2 * LIMIT);
  });
});

describeIfLeg(REDIS_LEG)('a Redis outage', () => {
  let redis: RedisProcess | undefined;
  let apps: TestApp[] = [];

  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
    await redis?.kill();
  });

  it('does not take the API down: each instance falls back to its own count, and sharing resumes when Redis is back', async () => {
    redis = await startRedisServer();
    apps = await twoInstances({ REDIS_URL: redis.url });
    const alice = await Promise.all(apps.map((app) => app.phone('alice')));
    const bob = await Promise.all(apps.map((app) => app.phone('bob')));
    expect(await alternate(alice, 4)).toEqual([200, 200, 200, 200]);

    await redis.kill();
    // Every request still answers, quickly, counted by the instance that serves it.
    const started = Date.now();
    const duringOutage = await alternate(bob, 2 * LIMIT + 2);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(duringOutage.filter((status) => status === 200)).toHaveLength(2 * LIMIT);
    expect(duringOutage.filter((status) => status === 429)).toHaveLength(2);
    expect((await alice[0].get('/api/health')).status).toBe(200);

    // Redis comes back on the same address: once the instances have reconnected, one budget again.
    redis = await startRedisServer(redis.port);
    const carol = await Promise.all(apps.map((app) => app.phone('carol')));
    let shared = false;
    for (const deadline = Date.now() + 20_000; !shared && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const dave = await Promise.all(apps.map((app) => app.phone(`dave-${Date.now()}`)));
      const statuses = await alternate(dave, LIMIT + 1);
      shared = statuses.filter((status) => status === 429).length === 1;
    }
    expect(shared).toBe(true);
    const statuses = await alternate(carol, LIMIT + 2);
    expect(statuses.filter((status) => status === 200)).toHaveLength(LIMIT);
  }, 90_000);
});
