package io.choir.sim;

import io.choir.checker.ClientOutcomes;
import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.DeterministicClient;
import io.choir.client.SessionExpiredException;
import io.choir.client.UnavailableException;
import io.choir.client.VersionedValue;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * SimClients are the simulated clients: each is the real client library ({@link DeterministicClient}:
 * the production dispatcher, session gate, router, retries, attempt timeout and deadline) on simulated
 * time ({@link SimClientIo#scheduler}) over its own simulated connections ({@link SimClientIo.Transport}
 * over {@link SimStream}s to each replica's client endpoint). Each client runs a few workers, each one
 * operation at a time (a read, a write or a compare-and-set on a few keys), so a client has several
 * requests in flight on one connection (pipelining, first_incomplete); a client's timing, its
 * settings (in-flight limit, request and attempt timeout, endpoint order) and the client library's own
 * jitter come from a Random seeded per client. Now and then a client process ends (closing its session,
 * or simply going away) and a new one takes its place.
 *
 * <p>The history records what the library's answers promise: OK with its result; an exception through
 * {@link SimHistory#fail} (the checker's ClientOutcomes: fail only when documented "not executed",
 * else info). Every value written is unique, so a write that the client called not executed and that
 * did execute is read back later, and the checker finds it.
 */
final class SimClients {
  static final long MS = 1_000_000L;

  private final Simulation sim;
  private final SimConfig cfg;
  private final SplittableRandom random;
  private final SimClientIo io;
  private final List<Client> clients = new ArrayList<>();
  private int nextProcess;
  private long nextValue = 1;
  private long nextClientId = 0x1000;
  /** The last value written or read per key: what a compare-and-set expects, so that some succeed. */
  private final Map<String, Long> lastSeen = new HashMap<>();
  private final String padding;

  /** One client process slot: a library client at a time, its workers, its operations left. */
  final class Client {
    final int index;
    final SplittableRandom rnd;
    final List<Worker> workers = new ArrayList<>();
    DeterministicClient lib;
    SimClientIo.Transport transport;
    int opsLeft;
    /** A restart of the client process is due: workers stop when their operation ends. */
    boolean restarting;
    boolean restarted;
    boolean closing;
    boolean done;

    Client(int index, long seed, int ops) {
      this.index = index;
      this.rnd = new SplittableRandom(seed);
      this.opsLeft = ops;
    }

    /** Every worker has stopped (none has an operation in flight or its next one scheduled). */
    boolean idle() {
      return workers.stream().allMatch(w -> w.parked);
    }
  }

  /** One worker of a client: one operation at a time, as one process of the history. */
  final class Worker {
    final Client client;
    int process;
    boolean busy;
    /** A key to read next: a write of it just failed, and a read tells the history what happened. */
    String readBack;
    /** Stopped: no operation in flight and none scheduled (until the client process restarts). */
    boolean parked;

    Worker(Client client) {
      this.client = client;
      this.process = nextProcess++;
    }
  }

  SimClients(Simulation sim, SimConfig cfg, SplittableRandom random) {
    this.sim = sim;
    this.cfg = cfg;
    this.random = random;
    this.io = new SimClientIo(sim, cfg);
    this.padding = cfg.bigValues() ? "x".repeat(cfg.valueBytes()) : "";
  }

  /** Starts every client a few ms into the run. */
  void start() {
    for (int i = 0; i < cfg.clients(); i++) {
      Client c = new Client(i, random.nextLong(), cfg.opsPerClient());
      clients.add(c);
      // The full-window scenario needs more writes in flight than its window holds.
      int workers = cfg.writesOnly() ? 10 + c.rnd.nextInt(6) : 1 + c.rnd.nextInt(4);
      for (int w = 0; w < workers; w++) {
        c.workers.add(new Worker(c));
      }
      open(c);
      for (Worker w : c.workers) {
        sim.clock.after(c.rnd.nextLong(5 * MS), () -> nextOp(w));
      }
    }
  }

  boolean allDone() {
    for (Client c : clients) {
      if (!c.done) {
        return false;
      }
    }
    return true;
  }

  /** A new client process in slot c: a library client with settings of its own. */
  private void open(Client c) {
    SplittableRandom r = c.rnd;
    List<String> endpoints = new ArrayList<>();
    int first = r.nextInt(cfg.replicas());
    for (int k = 0; k < cfg.replicas(); k++) {
      endpoints.add(SimClientIo.address(1 + (first + k) % cfg.replicas()));
    }
    // Mostly the defaults' ratio (an attempt timeout of twice the election timeout), sometimes a
    // short one; a request timeout of a few election timeouts, up to some longer than most faults.
    long attemptMs = r.nextInt(3) == 0 ? 300 : 1000;
    long requestMs = new long[] {2_000, 4_000, 8_000}[r.nextInt(3)];
    if (cfg.clientAttemptTimeoutMs() > 0) {
      attemptMs = cfg.clientAttemptTimeoutMs();
    }
    if (cfg.clientRequestTimeoutMs() > 0) {
      requestMs = cfg.clientRequestTimeoutMs() * 2 / 5 + r.nextLong(cfg.clientRequestTimeoutMs() * 3 / 5 + 1);
    }
    // Fewer slots than workers now and then: calls wait for a slot (and may give up as busy).
    int maxInFlight = Math.max(1, c.workers.size() - r.nextInt(2));
    c.transport = io.new Transport();
    c.lib = DeterministicClient.builder()
        .endpoints(endpoints)
        .requestTimeout(Duration.ofMillis(requestMs))
        .attemptTimeout(Duration.ofMillis(attemptMs))
        .maxInFlight(maxInFlight)
        .clientId(nextClientId++)
        .random(new Random(r.nextLong()))
        .scheduler(io.scheduler)
        .transport(c.transport)
        .build();
    sim.bump("client_processes");
  }

  private void nextOp(Worker w) {
    Client c = w.client;
    if (c.opsLeft == 0 || c.restarting || c.closing || c.done) {
      w.parked = true;
      afterIdle(c);
      return;
    }
    if (!c.restarted && c.opsLeft == cfg.opsPerClient() / 2 && c.rnd.nextInt(3) == 0) {
      // The client process ends midway (closing its session, or going away without a word: the session
      // stays until it expires) and a new one, with a new client id, goes on.
      c.restarted = true;
      c.restarting = true;
      w.parked = true;
      afterIdle(c);
      return;
    }
    if (w.busy) {
      throw new IllegalStateException("worker " + w.process + " of client " + c.index + " is busy");
    }
    c.opsLeft--;
    w.busy = true;
    String drawn = "k" + c.rnd.nextInt(cfg.keys());
    // Writes only (the full-window scenario), and each worker's last operation reads a key back.
    int dice = cfg.writesOnly() ? (c.opsLeft < c.workers.size() ? 0 : 5) : c.rnd.nextInt(10);
    if (w.readBack != null) {
      drawn = w.readBack; // a failed write is read back at once, before another write hides it
      w.readBack = null;
      dice = 0;
    }
    String key = drawn;
    long now = sim.clock.now();
    if (Simulation.TRACE) {
      System.out.printf("%9.3f client %d p%d invokes %s %s%n", now / 1e6, c.index, w.process,
          dice < 4 ? "read" : dice < 8 || !lastSeen.containsKey(key) ? "write" : "cas", key);
    }
    if (dice < 4) {
      sim.history.invoke(w.process, SimHistory.F.READ, key, null, null, now);
      c.lib.async().get(key).whenComplete((v, e) -> done(w, SimHistory.F.READ, key, null, null, v, e));
    } else if (dice < 8 || !lastSeen.containsKey(key)) {
      long value = nextValue++;
      lastSeen.put(key, value);
      sim.history.invoke(w.process, SimHistory.F.WRITE, key, value, null, now);
      c.lib.async().put(key.getBytes(StandardCharsets.UTF_8), encode(value))
          .whenComplete((v, e) -> done(w, SimHistory.F.WRITE, key, value, null, null, e));
    } else {
      long expected = lastSeen.get(key);
      long value = nextValue++;
      sim.history.invoke(w.process, SimHistory.F.CAS, key, value, expected, now);
      c.lib.async().compareAndSet(key.getBytes(StandardCharsets.UTF_8), encode(expected), encode(value))
          .whenComplete((v, e) -> done(w, SimHistory.F.CAS, key, value, expected, null, e));
    }
  }

  /** Small values are decimal numbers; big ones a number, a bar and padding up to valueBytes. */
  private byte[] encode(long value) {
    String s = String.valueOf(value);
    if (cfg.bigValues()) {
      s = s + "|" + padding.substring(0, Math.max(0, cfg.valueBytes() - s.length() - 1));
    }
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static long decode(byte[] bytes) {
    long v = 0;
    for (byte b : bytes) {
      if (b < '0' || b > '9') {
        break;
      }
      v = v * 10 + (b - '0');
    }
    return v;
  }

  /** Documented exceptions of the client library; anything else is a bug the run reports. */
  private static final Set<Class<?>> DOCUMENTED = Set.of(ChoirTimeoutException.class,
      SessionExpiredException.class, UnavailableException.class, BusyException.class, CasFailedException.class);

  private void done(Worker w, SimHistory.F f, String key, Long value, Long expected,
      Optional<VersionedValue> read, Throwable error) {
    long now = sim.clock.now();
    if (Simulation.TRACE) {
      System.out.printf("%9.3f client %d p%d %s %s %s: %s%n", now / 1e6, w.client.index, w.process, f, key,
          value, error == null ? "ok " + read : ClientOutcomes.describe(error));
    }
    if (error == null) {
      Long result = value;
      if (f == SimHistory.F.READ) {
        result = read.isPresent() ? decode(read.get().value()) : null;
        if (result != null) {
          lastSeen.put(key, result);
        }
      }
      sim.history.complete(SimHistory.Kind.OK, w.process, f, key, result, expected, now);
      sim.bump("ops_ok");
    } else {
      Throwable e = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
      SimHistory.Kind kind = sim.history.fail(e, w.process, f, key, value, expected, now);
      sim.bump("ops_" + kind.name().toLowerCase(Locale.ROOT) + "_" + e.getClass().getSimpleName());
      if (!DOCUMENTED.contains(e.getClass())) {
        sim.violation("client " + w.client.index + " got an exception the client does not document for this: " + e);
      }
      if (f != SimHistory.F.READ && !(e instanceof CasFailedException)) {
        w.readBack = key;
      }
      if (kind == SimHistory.Kind.INFO) {
        // Unknown outcome: Jepsen's info. The operation may still take effect, so this process never
        // completes; a fresh one continues.
        w.process = nextProcess++;
      }
    }
    w.busy = false;
    // Think time spreads a run over a few simulated seconds, so faults come and go while it runs.
    sim.clock.after(w.readBack != null ? 0 : w.client.rnd.nextLong(60 * MS), () -> nextOp(w));
  }

  /** A worker of c stopped: once all have, c restarts or closes. */
  private void afterIdle(Client c) {
    if (!c.idle() || c.closing || c.done) {
      return;
    }
    c.closing = true;
    if (c.restarting && c.rnd.nextBoolean()) {
      // Gone without a word (a crashed client process): its connections drop, no CloseSession.
      sim.bump("client_processes_vanished");
      c.transport.close();
      reopen(c);
      return;
    }
    c.lib.closeAsync().whenComplete((v, e) -> {
      sim.bump("client_processes_closed");
      if (c.restarting) {
        reopen(c);
      } else {
        c.done = true;
      }
    });
  }

  private void reopen(Client c) {
    c.restarting = false;
    c.closing = false;
    open(c);
    for (Worker w : c.workers) {
      w.parked = false;
      sim.clock.after(c.rnd.nextLong(20 * MS), () -> nextOp(w));
    }
  }
}
