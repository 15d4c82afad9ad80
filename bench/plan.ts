/**
 * The scenarios of issue 4 and the order they run in. Scenarios sharing a data set share
 * its floor; within a data set each repeat runs the floor then every scenario once, so
 * noise on the shared machine spreads over floor and scenarios alike.
 */
import { courseData, uniformData, type DataSet } from './data.js';
import { ClientKind } from './run.js';

/** The client's 8 KiB cut: any maxAmount above what fits in one frame. */
export const MAX_AMOUNT = 65535;
export const DEFAULT_AMOUNT = 150;

export interface ScenarioSpec {
  id: string;
  group: 'course' | 'scale' | 'many' | 'big' | 'workers' | 'pinned' | 'batch' | 'fsync' | 'storage';
  title: string;
  dataKey: string;
  client: ClientKind;
  /** Undefined: the server's default (one worker per core). */
  workers?: number;
  maxAmount: number;
  barrier?: boolean;
  backlog?: number;
  /** Server and load client on a core each (taskset): RunOptions.pinned. */
  pinned?: boolean;
  /** SERVER_FSYNC; undefined leaves the server's default (on). */
  fsync?: 'on' | 'off';
  /** SERVER_STORAGE and the servers sharing the database (RunOptions.storage, .servers). */
  storage?: 'file' | 'postgres';
  servers?: number;
  /** Also run the bench load client against this configuration (latency figures). */
  probe: boolean;
  repeats: number;
  timeoutMs: number;
}

export interface DataSpec {
  key: string;
  load: (workDir: string) => Promise<DataSet>;
  /** The floor's senders: one process for every agency, else one per agency. */
  floorOneProcess: boolean;
}

export interface Plan {
  data: DataSpec[];
  scenarios: ScenarioSpec[];
}

export interface PlanOptions {
  quick: boolean;
  /** Overrides every repeat count. */
  repeats?: number;
  /** Only these groups (course, scale, many, big, workers, pinned, batch, fsync, storage). */
  only?: string[];
  /** Whether `taskset` works here: the pinned group needs it. */
  canPin: boolean;
}

export function makePlan(o: PlanOptions): Plan {
  const light = o.repeats ?? (o.quick ? 2 : 5);
  const heavy = o.repeats ?? (o.quick ? 2 : 3);
  const scaleAgencies = o.quick ? 20 : 100;
  const scaleKey = `${scaleAgencies}x10000`;
  const data: DataSpec[] = [
    { key: 'course', load: (w) => courseData(w), floorOneProcess: false },
    { key: scaleKey, load: () => uniformData(scaleAgencies, 10_000), floorOneProcess: false },
  ];
  const real = ClientKind.REAL;
  const base = { client: real, maxAmount: DEFAULT_AMOUNT, probe: true } as const;
  const scenarios: ScenarioSpec[] = [
    {
      ...base,
      id: 'course',
      group: 'course',
      title: '1. course size: 5 agencies, 78,697 bets',
      dataKey: 'course',
      repeats: light,
      timeoutMs: 120_000,
    },
    {
      ...base,
      id: 'scale',
      group: 'scale',
      title: `2. scale: ${scaleAgencies} agencies x 10,000 bets${o.quick ? ' (reduced for --quick)' : ''}`,
      dataKey: scaleKey,
      repeats: heavy,
      timeoutMs: 600_000,
    },
  ];
  if (!o.quick) {
    data.push(
      { key: '1000x100', load: () => uniformData(1000, 100), floorOneProcess: true },
      { key: '1x5000000', load: () => uniformData(1, 5_000_000), floorOneProcess: false },
    );
    scenarios.push(
      {
        id: 'many',
        group: 'many',
        title: '3. many connections: 1,000 agencies x 100 bets, all connected at once (bench load client, one process)',
        dataKey: '1000x100',
        client: ClientKind.LOAD,
        maxAmount: DEFAULT_AMOUNT,
        barrier: true,
        backlog: 1024,
        probe: false,
        repeats: light,
        timeoutMs: 300_000,
      },
      {
        ...base,
        id: 'big',
        group: 'big',
        title: '4. big file: 1 agency, 5,000,000 bets',
        dataKey: '1x5000000',
        probe: false,
        repeats: Math.min(heavy, 2),
        timeoutMs: 900_000,
      },
    );
    for (const workers of [0, 1, 2, 4]) {
      scenarios.push(
        {
          ...base,
          id: `workers-course-${workers}`,
          group: 'workers',
          title: `5. workers=${workers}, course size`,
          dataKey: 'course',
          workers,
          repeats: light,
          timeoutMs: 120_000,
        },
        {
          ...base,
          id: `workers-scale-${workers}`,
          group: 'workers',
          title: `5. workers=${workers}, ${scaleAgencies}x10,000`,
          dataKey: scaleKey,
          workers,
          repeats: heavy,
          timeoutMs: 600_000,
        },
      );
    }
    // The pool where it can show: the server has a core to itself (the load client, pinned to
    // the other, leaves it alone), instead of sharing both with the clients.
    for (const workers of o.canPin ? [0, 1, 2] : []) {
      const pinned = { client: ClientKind.LOAD, maxAmount: DEFAULT_AMOUNT, probe: false, pinned: true, group: 'pinned', workers } as const;
      scenarios.push(
        {
          ...pinned,
          id: `pinned-course-${workers}`,
          title: `8. pinned, workers=${workers}, course size`,
          dataKey: 'course',
          repeats: light,
          timeoutMs: 120_000,
        },
        {
          ...pinned,
          id: `pinned-scale-${workers}`,
          title: `8. pinned, workers=${workers}, ${scaleAgencies}x10,000`,
          dataKey: scaleKey,
          repeats: heavy,
          timeoutMs: 600_000,
        },
      );
    }
    for (const maxAmount of [10, 50, MAX_AMOUNT]) {
      scenarios.push({
        ...base,
        id: `batch-${maxAmount}`,
        group: 'batch',
        title: `6. maxAmount=${maxAmount === MAX_AMOUNT ? '65535 (8 KiB cut)' : maxAmount}, course size`,
        dataKey: 'course',
        maxAmount,
        repeats: light,
        timeoutMs: 180_000,
      });
    }
    // Issue 9: what flushing rows and journal before each group commit's acks costs.
    data.push({ key: '5x200000', load: () => uniformData(5, 200_000), floorOneProcess: false });
    scenarios.push({
      ...base,
      id: 'fsync-course-off',
      group: 'fsync',
      title: '7. SERVER_FSYNC=off, course size (compare with 1.)',
      dataKey: 'course',
      fsync: 'off',
      repeats: light,
      timeoutMs: 120_000,
    });
    for (const fsync of ['on', 'off'] as const) {
      scenarios.push({
        ...base,
        id: `fsync-1m-${fsync}`,
        group: 'fsync',
        title: `7. SERVER_FSYNC=${fsync}, 5 agencies x 200,000 bets`,
        dataKey: '5x200000',
        fsync,
        probe: false,
        repeats: heavy,
        timeoutMs: 600_000,
      });
    }
  }
  // Issue 13: the same 1M bets on the file backend and on PostgreSQL with one and two servers,
  // the bench load client (it never limits the rate) spread over the servers. Only on request
  // (--only storage, or one of its ids): it needs PostgreSQL's server binaries (tools/ensure-postgres.sh).
  if (o.only?.some((g) => g === 'storage' || g.startsWith('storage-')) === true) {
    const storage = { client: ClientKind.LOAD, maxAmount: DEFAULT_AMOUNT, probe: false, group: 'storage', dataKey: scaleKey } as const;
    const what = `${scaleAgencies} agencies x 10,000 bets`;
    scenarios.push(
      { ...storage, id: 'storage-file', title: `9. file backend, 1 server, ${what}`, repeats: heavy, timeoutMs: 600_000 },
      {
        ...storage,
        id: 'storage-pg-1',
        title: `9. PostgreSQL, 1 server, ${what}`,
        storage: 'postgres',
        servers: 1,
        repeats: heavy,
        timeoutMs: 900_000,
      },
      {
        ...storage,
        id: 'storage-pg-2',
        title: `9. PostgreSQL, 2 servers, ${what}`,
        storage: 'postgres',
        servers: 2,
        repeats: heavy,
        timeoutMs: 900_000,
      },
    );
  }
  const only = o.only;
  const chosen = only === undefined ? scenarios : scenarios.filter((s) => only.includes(s.group) || only.includes(s.id));
  return { data: data.filter((d) => chosen.some((s) => s.dataKey === d.key)), scenarios: chosen };
}
