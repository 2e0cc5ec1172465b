package io.choir.jepsen;

import io.choir.checker.ClientOutcomes;
import io.choir.checker.Operation;
import io.choir.checker.Outcome;
import io.choir.client.ChoirClient;
import io.choir.client.VersionedValue;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * RegisterWorkload is Jepsen's register workload: per key, random reads, writes and compare-and-sets
 * over the values 0..4, by several processes at once; every key is a register the linearizability
 * checker verifies on its own.
 *
 * <p>The workers are split into {@code keys} groups of {@code threadsPerKey}; a group works on one key
 * until the key has had {@code maxOpsPerKey} invocations or would get more than
 * {@code maxProcessesPerKey} processes, then the group moves to a fresh key. This bounds the checker's
 * search per key (Jepsen's independent generator does the same).
 *
 * <p>Outcomes: ok (the client returned), fail (the client's exception promises that the request did not
 * take effect: {@link ClientOutcomes}' allow-list, e.g. CAS_FAILED, unavailable, busy), info (anything
 * else: a timeout, an exception type the allow-list does not name, any unexpected error). Reads follow
 * the same rule: an info read constrains nothing in the checker, so it costs nothing but the process.
 * After info the process is done: the worker continues as a fresh process with a fresh client.
 */
public final class RegisterWorkload {
  private static final Logger log = LoggerFactory.getLogger(RegisterWorkload.class);

  /** Settings of the workload. */
  public record Settings(
      int keys,
      int threadsPerKey,
      int maxOpsPerKey,
      int maxProcessesPerKey,
      double opsPerSecond,
      Duration requestTimeout) {
    /** Settings checks the bounds. */
    public Settings {
      if (keys < 1 || threadsPerKey < 1 || threadsPerKey > maxProcessesPerKey || maxProcessesPerKey > 10) {
        throw new IllegalArgumentException("need keys >= 1 and 1 <= threadsPerKey <= maxProcessesPerKey <= 10");
      }
      if (maxOpsPerKey < 1 || maxOpsPerKey > 200) {
        throw new IllegalArgumentException("maxOpsPerKey must be in 1..200");
      }
    }

    /** defaults: 2 keys at a time, 5 processes each, 200 ops / 10 processes per key, 100 ops/s, 2 s timeout. */
    public static Settings defaults() {
      return new Settings(2, 5, 200, 10, 100, Duration.ofSeconds(2));
    }

    /** workers is the number of worker threads. */
    public int workers() {
      return keys * threadsPerKey;
    }
  }

  /** A client the workload can drive: the real ChoirClient, or a fake in unit tests. */
  public interface Client extends Workers.Client {
    Optional<String> get(String key);

    void put(String key, String value);

    void compareAndSet(String key, String expected, String newValue);

    /** of adapts a ChoirClient. */
    static Client of(ChoirClient c) {
      return new Client() {
        @Override
        public Optional<String> get(String key) {
          return c.get(key).map(VersionedValue::valueAsString);
        }

        @Override
        public void put(String key, String value) {
          c.put(key, value);
        }

        @Override
        public void compareAndSet(String key, String expected, String newValue) {
          c.compareAndSet(key, expected, newValue);
        }

        @Override
        public void close() {
          c.close();
        }
      };
    }
  }

  private final Settings settings;
  private final Recorder recorder;
  private final Function<String, Client> clients;
  private final KeySlot[] slots;
  private final Workers<Client> workers;
  private final Clock clock;

  /**
   * RegisterWorkload over {@code nodes} (names); {@code clients} makes a fresh client entering through a
   * node; {@code seed} drives the op mix; on the system clock.
   */
  public RegisterWorkload(Settings settings, Recorder recorder, List<String> nodes, Function<String, Client> clients,
      long seed) {
    this(settings, recorder, nodes, clients, seed, Clock.SYSTEM);
  }

  /** RegisterWorkload pacing its workers and spending its final-read budget on {@code clock}. */
  RegisterWorkload(Settings settings, Recorder recorder, List<String> nodes, Function<String, Client> clients,
      long seed, Clock clock) {
    this.settings = settings;
    this.recorder = recorder;
    this.clients = clients;
    this.clock = clock;
    this.slots = new KeySlot[settings.keys()];
    for (int i = 0; i < slots.length; i++) {
      slots[i] = new KeySlot(i, settings.maxOpsPerKey(), settings.maxProcessesPerKey());
    }
    this.workers = new Workers<>("register", settings.workers(), settings.opsPerSecond(), settings.requestTimeout(),
        nodes, clients, seed, this::step, clock);
  }

  /** start starts the worker threads. */
  public void start() {
    workers.start();
  }

  /** stop asks the workers to finish their current op and waits for them (at most the request timeout + 5 s). */
  public void stop() throws InterruptedException {
    workers.stop();
  }

  /**
   * runInterleaved runs the workers on the calling thread, a turn at a time in the order {@code order}
   * draws, for {@code maxOps} ops (see {@link Workers#runInterleaved}): a replayable run for unit tests.
   */
  int runInterleaved(Random order, int maxOps) {
    return workers.runInterleaved(order, maxOps);
  }

  /** keys are every key the workload touched, sorted. */
  public synchronized Set<String> keys() {
    Set<String> out = new TreeSet<>();
    for (KeySlot s : slots) {
      out.addAll(s.keys());
    }
    return out;
  }

  private Workers.Outcome step(int worker, Random random, long process, Client client, String node) {
    String key = slots[worker / settings.threadsPerKey()].keyFor(process);
    return perform(client, generate(random, process, key), node) ? Workers.Outcome.UNKNOWN : Workers.Outcome.NEXT;
  }

  /** generate picks read, write or cas with equal odds, values 0..4. */
  static Operation generate(Random random, long process, String key) {
    return switch (random.nextInt(3)) {
      case 0 -> Operation.read(process, key);
      case 1 -> Operation.write(process, key, random.nextInt(5));
      default -> Operation.cas(process, key, (long) random.nextInt(5), random.nextInt(5));
    };
  }

  /**
   * perform runs {@code op} on {@code client} and records it; returns true when its outcome is unknown
   * (info), so the process must be replaced.
   */
  boolean perform(Client client, Operation op, String node) {
    long p = op.process();
    recorder.invoke(op, node);
    try {
      switch (op.type()) {
        case READ -> {
          Optional<String> v = client.get(op.key());
          recorder.okRead(p, v.map(RegisterWorkload::parse).orElse(null));
        }
        case WRITE -> {
          client.put(op.key(), Long.toString(op.value()));
          recorder.ok(p);
        }
        case CAS -> {
          client.compareAndSet(op.key(), Long.toString(op.expected()), Long.toString(op.newValue()));
          recorder.ok(p);
        }
        default -> throw new AssertionError(op.type());
      }
      return false;
    } catch (RuntimeException e) {
      return recordError(p, op, e);
    }
  }

  /**
   * recordError records the end of {@code process}'s {@code op} by {@code error} as {@link ClientOutcomes}
   * says: fail only when the error promises the request did not take effect, else info. Returns true for
   * info (the process is done).
   */
  private boolean recordError(long process, Operation op, RuntimeException error) {
    String why = ClientOutcomes.describe(error);
    if (ClientOutcomes.outcome(error) == Outcome.FAIL) {
      recorder.fail(process, why);
      return false;
    }
    log.debug("{} -> {}", op.describeInput(), why);
    recorder.info(process, why);
    return true;
  }

  /**
   * finalReads reads every key the workload touched, as a fresh process through {@code node}; a read that
   * fails is recorded as its error says (fail or info, as every op; after info the next attempt is a fresh
   * process's, on the same client: no op of the old process is outstanding any more) and tried again, up
   * to {@code attempts} times per key, and all of it within {@code budget} (a cluster that did not recover
   * must not hold the run for keys x attempts x timeout).
   *
   * @return the number of keys whose final read succeeded
   */
  public int finalReads(String node, int attempts, Duration budget) {
    long deadline = clock.nanoTime() + budget.toNanos();
    long process = workers.nextProcess();
    Client client = clients.apply(node);
    int read = 0;
    try {
      for (String key : keys()) {
        for (int a = 0; a < attempts && clock.nanoTime() - deadline < 0; a++) {
          Operation op = Operation.read(process, key);
          recorder.invoke(op, node);
          try {
            recorder.okRead(process, client.get(key).map(RegisterWorkload::parse).orElse(null));
            read++;
            break;
          } catch (RuntimeException e) {
            if (recordError(process, op, e)) {
              process = workers.nextProcess();
            }
          }
        }
      }
    } finally {
      client.close();
    }
    return read;
  }

  /** parse reads a stored value; anything that is not a number becomes -1, a value no one wrote. */
  static Long parse(String s) {
    try {
      return Long.parseLong(s.trim());
    } catch (NumberFormatException e) {
      return -1L;
    }
  }

  /**
   * KeySlot is the key one group of workers is on: it moves to a fresh key once the current one had
   * maxOps invocations or a new process would exceed maxProcesses.
   */
  static final class KeySlot {
    private final int index;
    private final int maxOps;
    private final int maxProcesses;
    private final List<String> keys = new ArrayList<>();
    private int generation;
    private int ops;
    private final Set<Long> processes = new HashSet<>();

    KeySlot(int index, int maxOps, int maxProcesses) {
      this.index = index;
      this.maxOps = maxOps;
      this.maxProcesses = maxProcesses;
      keys.add(name());
    }

    synchronized String keyFor(long process) {
      if (ops >= maxOps || (!processes.contains(process) && processes.size() >= maxProcesses)) {
        generation++;
        ops = 0;
        processes.clear();
        keys.add(name());
      }
      processes.add(process);
      ops++;
      return name();
    }

    synchronized List<String> keys() {
      return ops == 0 && generation == 0 ? List.of() : List.copyOf(keys);
    }

    private String name() {
      return String.format("r%02d-%04d", index, generation);
    }
  }
}
