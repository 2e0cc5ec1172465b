package io.choir.jepsen;

import io.choir.checker.ClientOutcomes;
import io.choir.checker.Operation;
import io.choir.checker.Outcome;
import io.choir.client.ChoirClient;
import io.choir.client.LeaseNotFoundException;
import io.choir.client.LeaseStatus;
import io.choir.client.ReadConsistency;
import io.choir.client.VersionedValue;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;

/**
 * LeaseWorkload: lessees grant a lease ({@code ttl}, not kept alive by the client: the workload sends
 * each keep-alive itself and records its send and completion times), put the key {@code lease/<id>}
 * attached to it, keep it alive every TTL/3 (TTL/10 after a failure) for a random while up to two TTLs,
 * then revoke it (half of the leases) or stop and let it expire; a lease the cluster no longer knows
 * (LeaseNotFoundException on a keep-alive) ends there. Readers read random keys of the live and recently
 * ended leases linearizably all along. Every put and read is also in the history (value: the lease id).
 * {@link LeaseChecker} checks.
 */
public final class LeaseWorkload {
  /** PREFIX is the prefix of the leases' keys. */
  public static final String PREFIX = "lease/";

  /** RECENT_NANOS: readers keep reading a lease's key this long after its lease ended. */
  static final long RECENT_NANOS = TimeUnit.SECONDS.toNanos(10);

  /** A client: the real ChoirClient, or a fake in unit tests. */
  public interface Client extends Workers.Client {
    LeaseStatus grantOnce(Duration ttl);

    void keepAlive(long id);

    void revoke(long id);

    void put(String key, String value, long lease);

    Optional<VersionedValue> get(String key);

    static Client of(ChoirClient c) {
      return new Client() {
        @Override
        public LeaseStatus grantOnce(Duration ttl) {
          return c.leases().grantOnce(ttl);
        }

        @Override
        public void keepAlive(long id) {
          c.leases().keepAlive(id);
        }

        @Override
        public void revoke(long id) {
          c.leases().revoke(id);
        }

        @Override
        public void put(String key, String value, long lease) {
          c.leases().put(key, value, lease);
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
  private final Duration ttl;
  private final Workers<Client> lessees;
  private final Workers<Client> readers;
  private final AtomicBoolean stopping = new AtomicBoolean();
  private final List<LeaseChecker.Life> lives = new ArrayList<>();
  private final List<LeaseChecker.Read> reads = new ArrayList<>();
  /** keys readers may read: [key, ended-at or -1]. */
  private final List<Object[]> readable = new ArrayList<>();

  /** LeaseWorkload with {@code lessees} lessee and {@code readers} reader processes. */
  public LeaseWorkload(int lesseeCount, int readerCount, double readsPerSecond, Duration ttl, Duration requestTimeout,
      Recorder recorder, List<String> nodes, Function<String, Client> clients, long seed) {
    this.recorder = recorder;
    this.ttl = ttl;
    AtomicLong processes = new AtomicLong(); // one history: lessees and readers never share a process number
    this.lessees = new Workers<>("lessee", lesseeCount, 0, requestTimeout, nodes, clients, seed, this::lease,
        Clock.SYSTEM, processes);
    this.readers = new Workers<>("lease-reader", readerCount, readsPerSecond, requestTimeout, nodes, clients,
        seed * 7 + 1, this::read, Clock.SYSTEM, processes);
  }

  /** start starts the lessees and the readers. */
  public void start() {
    lessees.start();
    readers.start();
  }

  /** stop ends the lessees' leases (no more keep-alives: they expire) and stops the readers. */
  public void stop() throws InterruptedException {
    stopping.set(true);
    lessees.stop();
    readers.stop();
  }

  /** progress is one line while it runs. */
  public synchronized String progress() {
    return lives.size() + " leases ended, " + reads.size() + " reads";
  }

  /** lives is every lease recorded so far (complete once {@link #stop} returned). */
  public synchronized List<LeaseChecker.Life> lives() {
    return List.copyOf(lives);
  }

  /** reads is every successful read so far. */
  public synchronized List<LeaseChecker.Read> reads() {
    return List.copyOf(reads);
  }

  /** latestUpper is the latest deadline any recorded lease may have (its U), or 0. */
  public synchronized long latestUpper() {
    long u = 0;
    for (LeaseChecker.Life l : lives) {
      u = Math.max(u, l.upper());
    }
    return u;
  }

  private Workers.Outcome lease(int worker, Random random, long process, Client c, String node) {
    if (stopping.get()) {
      return Workers.Outcome.DONE;
    }
    boolean unknown = false;
    long send = recorder.now();
    LeaseStatus granted;
    try {
      granted = c.grantOnce(ttl);
    } catch (RuntimeException e) {
      try {
        TimeUnit.MILLISECONDS.sleep(200); // a cluster without a primary refuses at once: do not spin
      } catch (InterruptedException ie) {
        Thread.currentThread().interrupt();
      }
      return ClientOutcomes.outcome(e) == Outcome.FAIL ? Workers.Outcome.NEXT : Workers.Outcome.UNKNOWN;
    }
    long ttlNanos = TimeUnit.MILLISECONDS.toNanos(granted.ttlMs());
    List<LeaseChecker.Alive> alive = new ArrayList<>();
    alive.add(new LeaseChecker.Alive(send, recorder.now(), Outcome.OK));
    String key = PREFIX + granted.id();
    Object[] entry = {key, -1L};
    synchronized (this) {
      readable.add(entry);
    }
    Operation put = Operation.write(process, key, granted.id());
    recorder.invoke(put, node);
    Outcome putOutcome;
    try {
      c.put(key, Long.toString(granted.id()), granted.id());
      recorder.ok(process);
      putOutcome = Outcome.OK;
    } catch (RuntimeException e) {
      putOutcome = ClientOutcomes.outcome(e);
      if (putOutcome == Outcome.FAIL) {
        recorder.fail(process, ClientOutcomes.describe(e));
      } else {
        recorder.info(process, ClientOutcomes.describe(e));
        unknown = true;
      }
    }
    long putComplete = recorder.now();
    long holdUntil = send + (long) (random.nextDouble() * 2 * ttlNanos);
    boolean lost = false;
    try {
      while (!stopping.get() && recorder.now() < holdUntil) {
        long pause = alive.get(alive.size() - 1).outcome() == Outcome.OK ? ttlNanos / 3 : ttlNanos / 10;
        TimeUnit.NANOSECONDS.sleep(Math.min(pause, Math.max(0, holdUntil - recorder.now())));
        if (stopping.get() || recorder.now() >= holdUntil) {
          break;
        }
        long s = recorder.now();
        try {
          c.keepAlive(granted.id());
          alive.add(new LeaseChecker.Alive(s, recorder.now(), Outcome.OK));
        } catch (LeaseNotFoundException e) {
          alive.add(new LeaseChecker.Alive(s, recorder.now(), Outcome.FAIL));
          lost = true;
          break;
        } catch (RuntimeException e) {
          Outcome o = ClientOutcomes.outcome(e);
          alive.add(new LeaseChecker.Alive(s, recorder.now(), o));
          if (o == Outcome.INFO) {
            unknown = true;
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    long revokeInvoke = -1;
    long revokeComplete = -1;
    Outcome revoke = null;
    if (!lost && !stopping.get() && random.nextBoolean()) {
      revokeInvoke = recorder.now();
      try {
        c.revoke(granted.id());
        revoke = Outcome.OK;
      } catch (LeaseNotFoundException e) {
        revoke = Outcome.FAIL; // it had expired already
      } catch (RuntimeException e) {
        revoke = ClientOutcomes.outcome(e);
        unknown |= revoke == Outcome.INFO;
      }
      revokeComplete = recorder.now();
    }
    synchronized (this) {
      lives.add(new LeaseChecker.Life(granted.id(), key, ttlNanos, List.copyOf(alive), putOutcome, putComplete,
          revokeInvoke, revokeComplete, revoke));
      entry[1] = recorder.now();
    }
    return unknown ? Workers.Outcome.UNKNOWN : Workers.Outcome.NEXT;
  }

  private Workers.Outcome read(int worker, Random random, long process, Client c, String node) {
    String key;
    synchronized (this) {
      long now = recorder.now();
      readable.removeIf(e -> (long) e[1] >= 0 && now - (long) e[1] > RECENT_NANOS);
      if (readable.isEmpty()) {
        return Workers.Outcome.NEXT;
      }
      key = (String) readable.get(random.nextInt(readable.size()))[0];
    }
    long invoke = recorder.invoke(Operation.read(process, key), node);
    try {
      Optional<VersionedValue> v = c.get(key);
      long complete = recorder.okRead(process, v.map(x -> Long.parseLong(x.valueAsString())).orElse(null));
      synchronized (this) {
        reads.add(new LeaseChecker.Read(key, invoke, complete, v.isPresent()));
      }
      return Workers.Outcome.NEXT;
    } catch (RuntimeException e) {
      if (ClientOutcomes.outcome(e) == Outcome.FAIL) {
        recorder.fail(process, ClientOutcomes.describe(e));
        return Workers.Outcome.NEXT;
      }
      recorder.info(process, ClientOutcomes.describe(e));
      return Workers.Outcome.UNKNOWN;
    }
  }
}
