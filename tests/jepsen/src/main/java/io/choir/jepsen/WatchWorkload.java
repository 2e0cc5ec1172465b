package io.choir.jepsen;

import io.choir.checker.ClientOutcomes;
import io.choir.checker.Operation;
import io.choir.checker.Outcome;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.ReadConsistency;
import io.choir.client.VersionedValue;
import io.choir.client.Watch;
import io.choir.client.WatchEvent;
import io.choir.client.WatchListener;
import io.choir.client.WatchOptions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * WatchWorkload: writers put unique values (one global counter) to {@link #KEYS} keys under {@link #PREFIX}
 * while watchers, each with a client of its own entering through a different replica, follow the prefix
 * or one key for the whole run, through the nemesis. Before anything, each key is written once (setup);
 * every watcher starts from the revision after the setup: two prefix and two one-key watchers at the
 * start, and one more prefix and one-key watcher at {@code lateStart}, from that then past revision.
 * After the heal, {@link #finalReads} reads every key linearizably and waits until every running watcher
 * delivered up to the final versions; {@link WatchChecker} then checks.
 */
public final class WatchWorkload {
  /** PREFIX is the watched prefix. */
  public static final String PREFIX = "watch/";

  /** KEYS is how many keys the writers write. */
  public static final int KEYS = 4;

  /** A writer's client: the real ChoirClient, or a fake in unit tests. */
  public interface Client extends Workers.Client {
    /** put writes and returns the revision (op number). */
    long put(String key, String value);

    Optional<VersionedValue> get(String key);

    static Client of(ChoirClient c) {
      return new Client() {
        @Override
        public long put(String key, String value) {
          return c.put(key, value);
        }

        @Override
        public Optional<VersionedValue> get(String key) {
          return c.get(key, ReadConsistency.LINEARIZABLE);
        }

        @Override
        public void close() {
          c.close();
        }
      };
    }
  }

  private final Recorder recorder;
  private final Function<String, Client> clients;
  private final Function<String, ChoirClient> watchClients;
  private final List<String> nodes;
  private final Workers<Client> workers;
  private final Duration lateStart;
  private final AtomicLong nextValue = new AtomicLong(1);
  private final List<WatchChecker.Write> writes = new ArrayList<>();
  private final List<Running> watchers = new ArrayList<>();
  private volatile long start = -1;
  private Thread late;

  /**
   * WatchWorkload with {@code writers} writer processes at {@code opsPerSecond} in all; {@code clients}
   * makes a writer's client entering through a node, {@code watchClients} a watcher's.
   */
  public WatchWorkload(int writers, double opsPerSecond, Duration requestTimeout, Recorder recorder,
      List<String> nodes, Function<String, Client> clients, Function<String, ChoirClient> watchClients, long seed,
      Duration lateStart) {
    this.recorder = recorder;
    this.clients = clients;
    this.watchClients = watchClients;
    this.nodes = List.copyOf(nodes);
    this.lateStart = lateStart;
    this.workers = new Workers<>("watch-writer", writers, opsPerSecond, requestTimeout, nodes, clients, seed,
        this::step, Clock.SYSTEM);
  }

  static String key(int i) {
    return PREFIX + "k" + i;
  }

  /** start writes every key once, starts the watchers and the writers. */
  public void start() {
    long process = workers.nextProcess();
    try (Client c = clients.apply(nodes.get(0))) {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      long max = 0;
      for (int i = 0; i < KEYS; i++) {
        long rev = -1;
        while (rev < 0 && System.nanoTime() < deadline) {
          rev = write(c, process, key(i), nodes.get(0));
          if (rev < 0) {
            process = workers.nextProcess();
          }
        }
        if (rev < 0) {
          throw new IllegalStateException("the watch workload's setup write of " + key(i) + " did not succeed in 30 s");
        }
        max = Math.max(max, rev);
      }
      start = max + 1;
    }
    watch("prefix-a", true, PREFIX, 0);
    watch("prefix-b", true, PREFIX, 1);
    watch("key-k0", false, key(0), 2);
    watch("key-k1", false, key(1), 3);
    late = new Thread(() -> {
      try {
        Thread.sleep(lateStart.toMillis());
        watch("prefix-past", true, PREFIX, 4);
        watch("key-k0-past", false, key(0), 5);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "watch-late-start");
    late.setDaemon(true);
    late.start();
    workers.start();
  }

  /** stop stops the writers (the watchers go on until {@link #finalReads}). */
  public void stop() throws InterruptedException {
    workers.stop();
    late.interrupt();
    late.join(5000);
  }

  private Workers.Outcome step(int worker, Random random, long process, Client client, String node) {
    String key = key(random.nextInt(KEYS));
    return write(client, process, key, node) == -2 ? Workers.Outcome.UNKNOWN : Workers.Outcome.NEXT;
  }

  /** write puts a fresh value; returns its revision, -1 when it failed, -2 when its outcome is unknown. */
  private long write(Client client, long process, String key, String node) {
    long value = nextValue.getAndIncrement();
    recorder.invoke(Operation.write(process, key, value), node);
    try {
      long rev = client.put(key, Long.toString(value));
      recorder.ok(process);
      add(new WatchChecker.Write(key, value, Outcome.OK, rev));
      return rev;
    } catch (RuntimeException e) {
      String why = ClientOutcomes.describe(e);
      if (ClientOutcomes.outcome(e) == Outcome.FAIL) {
        recorder.fail(process, why);
        add(new WatchChecker.Write(key, value, Outcome.FAIL, -1));
        return -1;
      }
      recorder.info(process, why);
      add(new WatchChecker.Write(key, value, Outcome.INFO, -1));
      return -2;
    }
  }

  private synchronized void add(WatchChecker.Write w) {
    writes.add(w);
  }

  private void watch(String name, boolean prefix, String range, int node) {
    ChoirClient c = watchClients.apply(nodes.get(node % nodes.size()));
    Running r = new Running(name, prefix, range, start, c);
    WatchOptions o = (prefix ? WatchOptions.prefix(range) : WatchOptions.key(range)).fromRevision(start);
    r.watch = c.watch(o, r);
    synchronized (this) {
      watchers.add(r);
    }
  }

  /** progress is one line while it runs. */
  public synchronized String progress() {
    StringBuilder b = new StringBuilder(writes.size() + " writes; events:");
    for (Running r : watchers) {
      b.append(' ').append(r.name).append('=').append(r.count());
    }
    return b.toString();
  }

  /**
   * finalReads reads every key linearizably through {@code reader} (retrying for up to {@code budget}),
   * then waits, up to 30 s, until every running watcher delivered up to the final versions it covers,
   * and closes the watchers. Returns the finals, or null when some key could not be read.
   */
  public List<WatchChecker.Final> finalReads(String reader, Duration budget) throws InterruptedException {
    List<WatchChecker.Final> finals = new ArrayList<>();
    long deadline = System.nanoTime() + budget.toNanos();
    Client c = clients.apply(reader);
    try {
      for (int i = 0; i < KEYS && finals != null; i++) {
        WatchChecker.Final f = null;
        while (f == null && System.nanoTime() < deadline) {
          long process = workers.nextProcess();
          recorder.invoke(Operation.read(process, key(i)), reader);
          try {
            Optional<VersionedValue> v = c.get(key(i));
            recorder.okRead(process, v.map(x -> Long.parseLong(x.valueAsString())).orElse(null));
            f = new WatchChecker.Final(key(i), v.map(VersionedValue::valueAsString).orElse(null),
                v.map(VersionedValue::version).orElse(0L));
          } catch (RuntimeException e) {
            recorder.info(process, ClientOutcomes.describe(e));
            c.close();
            c = clients.apply(reader);
            Thread.sleep(250);
          }
        }
        if (f == null) {
          finals = null;
        } else {
          finals.add(f);
        }
      }
    } finally {
      c.close();
    }
    if (finals != null) {
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      for (Running r : runningWatchers()) {
        long target = 0;
        for (WatchChecker.Final f : finals) {
          if (r.covers(f.key())) {
            target = Math.max(target, f.version());
          }
        }
        while (r.error == null && r.last() < target && System.nanoTime() < until) {
          Thread.sleep(50);
        }
      }
    }
    for (Running r : runningWatchers()) {
      try {
        r.watch.close();
      } catch (RuntimeException e) {
        // Netty's setOption(SO_LINGER) on a channel closing at that moment throws (see the report)
      }
      r.client.close();
    }
    return finals;
  }

  private synchronized List<Running> runningWatchers() {
    return List.copyOf(watchers);
  }

  /** writes is what the writers attempted so far. */
  public synchronized List<WatchChecker.Write> writes() {
    return List.copyOf(writes);
  }

  /** watchers is every watcher's record so far. */
  public synchronized List<WatchChecker.Watcher> watchers() {
    List<WatchChecker.Watcher> out = new ArrayList<>();
    for (Running r : watchers) {
      out.add(r.snapshot());
    }
    return out;
  }

  /** Running is one live watcher and what it delivered. */
  private static final class Running implements WatchListener {
    final String name;
    final boolean prefix;
    final String range;
    final long from;
    final ChoirClient client;
    final List<WatchChecker.Event> events = new ArrayList<>();
    volatile String error;
    Watch watch;

    Running(String name, boolean prefix, String range, long from, ChoirClient client) {
      this.name = name;
      this.prefix = prefix;
      this.range = range;
      this.from = from;
      this.client = client;
    }

    boolean covers(String key) {
      return prefix ? key.startsWith(range) : key.equals(range);
    }

    @Override
    public synchronized void onEvent(WatchEvent e) {
      events.add(new WatchChecker.Event(e.revision(), e.keyAsString(), e.kind() == WatchEvent.Kind.DELETE,
          e.valueAsString()));
    }

    @Override
    public void onError(ChoirException e) {
      error = e.getClass().getSimpleName() + ": " + e.getMessage();
    }

    synchronized int count() {
      return events.size();
    }

    synchronized long last() {
      return events.isEmpty() ? from - 1 : events.get(events.size() - 1).revision();
    }

    synchronized WatchChecker.Watcher snapshot() {
      return new WatchChecker.Watcher(name, range, prefix, from, List.copyOf(events), error);
    }
  }
}
