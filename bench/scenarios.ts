/**
 * The benchmark scenarios, in a full and a quick (under a minute in all) version.
 *
 * @module
 */

/** Message traffic against a fresh server. */
export interface TrafficScenario {
  kind: "traffic";
  /** As shown in the table: `direct`, `scaling/fanout100`, ... */
  name: string;
  processes: number;
  threads: number;
  mode: "direct" | "room";
  /** direct: pairs; room: users in the room. */
  users: number;
  senders: number;
  /** Messages in flight per sender; 0 = open loop at `ratePerSender`. */
  window: number;
  ratePerSender: number;
  warmupMs: number;
  measureMs: number;
  /** The longest the loadgens wait for the last deliveries after sending stops. */
  drainMs: number;
  /** 2: a cold run on a fresh server, then a warm one on the same server; 1: cold only. */
  rounds: 1 | 2;
  /**
   * 2: two chatd nodes of this shape joined through one nats-server (started for the run);
   * direct receivers, and room users other than the senders, on the second node. Default 1.
   */
  nodes?: 1 | 2;
}

/** Many clients connect and JOIN, then stay idle. */
export interface ConnsScenario {
  kind: "conns";
  name: string;
  processes: number;
  threads: number;
  clients: number;
  warmupClients: number;
  /** Connections being set up at once per loadgen. */
  concurrency: number;
  /**
   * Pause before each RSS reading: after start-up, and after the storm (3 s in the full run,
   * as an operator reads it, not after minutes of idling).
   */
  settleMs: number;
  /**
   * How long after the storm RSS is watched for its idle (lowest) value: V8 gives back the
   * heap the storm's garbage grew only after seconds of idleness. 0: one reading just after.
   */
  idleWaitMs: number;
}

/** One scenario run. */
export type Scenario = TrafficScenario | ConnsScenario;

/**
 * Messages in flight per sender in the closed-loop scenarios: 16, as the issue sets for
 * `direct`, and the same in the rooms so that the figures compare.
 */
export const WINDOW = 16;

/**
 * The smaller windows the rooms also run with (`fanout100/w8`, `fanout1000/w4`): a message
 * leaves the window once every receiver has it, so a small window exposes latency.
 */
export const SMALL_WINDOWS = { fanout100: 8, fanout1000: 4 } as const;

/** The groups `--scenario` can name. */
export const SCENARIO_NAMES = [
  "direct",
  "fanout100",
  "fanout1000",
  "rate",
  "conns",
  "scaling",
  "cluster",
];

/** True for a scenario that needs nats-server: two nodes joined through NATS. */
export function isClustered(scenario: Scenario): boolean {
  return scenario.kind === "traffic" && scenario.nodes === 2;
}

/** Options of {@linkcode scenarios}. */
export interface ScenarioOptions {
  /** The small version of everything. */
  quick: boolean;
  /** Server shape for all but `scaling`. Default 2×2, the server's default. */
  processes?: number;
  threads?: number;
  /**
   * Side by side with the peers: `conns` reads RSS once, 3 s after the storm, instead of
   * watching it for 45 s more.
   */
  peers?: boolean;
}

/**
 * The runs of the named scenario groups, in order.
 *
 * @throws {RangeError} for an unknown name.
 */
export function scenarios(names: readonly string[], options: ScenarioOptions): Scenario[] {
  const { quick, processes = 2, threads = 2, peers = false } = options;
  const timing = quick
    ? { warmupMs: 500, measureMs: 1500, drainMs: 5000 }
    : { warmupMs: 2000, measureMs: 5000, drainMs: 15_000 };
  const scalingTiming = quick
    ? { warmupMs: 300, measureMs: 1000, drainMs: 5000 }
    : { warmupMs: 1000, measureMs: 3000, drainMs: 15_000 };
  const shape = { processes, threads };
  // --quick (CI) runs a warm round only for `direct`, so that the path is kept working.
  const rounds = quick ? 1 : 2;
  const closedLoop = (
    run: Omit<TrafficScenario, "kind" | "window" | "ratePerSender" | "rounds">,
  ): TrafficScenario => ({
    kind: "traffic" as const,
    window: WINDOW,
    ratePerSender: 0,
    rounds,
    ...run,
  });
  const pairs = quick ? 20 : 50;
  const direct = { mode: "direct", users: pairs, senders: pairs } as const;
  const fanout100 = { mode: "room", users: 100, senders: 4 } as const;
  const fanout1000 = { mode: "room", users: quick ? 250 : 1000, senders: 2 } as const;
  const rateSenders = 10;
  const rate: TrafficScenario = {
    kind: "traffic",
    name: "rate",
    ...shape,
    mode: "room",
    users: quick ? 50 : 100,
    senders: rateSenders,
    window: 0,
    ratePerSender: (quick ? 500 : 2000) / rateSenders,
    rounds,
    ...timing,
    measureMs: quick ? 2000 : 10_000,
  };
  const conns: ConnsScenario = {
    kind: "conns",
    name: "conns",
    ...shape,
    clients: quick ? 500 : 5000,
    warmupClients: quick ? 100 : 500,
    concurrency: 256,
    settleMs: quick ? 300 : 3000,
    idleWaitMs: quick || peers ? 0 : 45_000,
  };
  const shapes = quick ? [[1, 1], [2, 2]] : [[1, 1], [1, 2], [2, 1], [2, 2], [4, 1]];
  const scaling = shapes.flatMap(([p, t]) => {
    const at = { processes: p!, threads: t!, ...scalingTiming };
    return [
      closedLoop({ name: "scaling/direct", ...direct, ...at }),
      closedLoop({ name: "scaling/fanout100", ...fanout100, ...at }),
    ];
  });
  const groups: Record<string, Scenario[]> = {
    direct: [{ ...closedLoop({ name: "direct", ...direct, ...shape, ...timing }), rounds: 2 }],
    fanout100: [
      closedLoop({ name: "fanout100", ...fanout100, ...shape, ...timing }),
      {
        ...closedLoop({ name: "fanout100/w8", ...fanout100, ...shape, ...timing }),
        window: SMALL_WINDOWS.fanout100,
      },
    ],
    fanout1000: [
      closedLoop({ name: "fanout1000", ...fanout1000, ...shape, ...timing }),
      {
        ...closedLoop({ name: "fanout1000/w4", ...fanout1000, ...shape, ...timing }),
        window: SMALL_WINDOWS.fanout1000,
      },
    ],
    rate: [rate],
    conns: [conns],
    scaling,
    // The same workload on one node and across two: direct pairs with the receiver on the
    // other node, and the lobby (`CHAT *`) with its senders on one node and the rest of its
    // users on the other (the lobby: written before named rooms spanned nodes).
    cluster: [1, 2].flatMap((nodes) => {
      const where = { ...shape, ...timing, nodes: nodes as 1 | 2 };
      const suffix = nodes === 1 ? "1node" : "2nodes";
      return [
        closedLoop({ name: `cluster/direct/${suffix}`, ...direct, ...where }),
        closedLoop({ name: `cluster/lobby/${suffix}`, ...fanout100, ...where }),
      ];
    }),
  };
  return names.flatMap((name) => {
    const group = groups[name];
    if (group === undefined) {
      throw new RangeError(`Unknown scenario ${name}: use ${SCENARIO_NAMES.join(", ")}`);
    }
    return group;
  });
}
