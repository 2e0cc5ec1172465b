package io.choir.jepsen;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Workers runs a workload's worker threads, the part every workload shares: worker {@code w} enters
 * through node {@code nodes[w % nodes]} with its own seeded random ({@code seed * 31 + w}), paces itself
 * to the target rate (random gaps averaging {@code workers / opsPerSecond}), and after an op of unknown
 * outcome continues as a fresh process with a fresh client (Jepsen's rule: an info op stays open, so its
 * process may issue nothing more). The workload supplies one step.
 *
 * <p>Each worker's state is a {@link Worker}, advanced op by op: by its own thread in a run
 * ({@link #start}), or by {@link #runInterleaved} on the caller's thread in a unit test, where a seeded
 * order of turns, seeded workers and a deterministic fake client make the whole history a function of the
 * seeds, so a failing test replays exactly. The pauses between ops are drawn the same way in both (so a
 * worker's sequence of ops does not depend on the mode) and spent on the {@link Clock}.
 *
 * @param <C> the workload's client
 */
final class Workers<C extends Workers.Client> {
  private static final Logger log = LoggerFactory.getLogger(Workers.class);

  /** A workload's client: closing it throws nothing. */
  interface Client extends AutoCloseable {
    @Override
    void close();
  }

  /** What a step did. */
  enum Outcome {
    /** the op completed (ok or fail): the process goes on */
    NEXT,
    /** the op's outcome is unknown (info): the process is done, a fresh one takes over */
    UNKNOWN,
    /** nothing left to do for this worker */
    DONE
  }

  /** One op of a worker, recorded by the workload. */
  interface Step<C> {
    Outcome run(int worker, Random random, long process, C client, String node);
  }

  private final String name;
  private final int count;
  private final double opsPerSecond;
  private final Duration requestTimeout;
  private final List<String> nodes;
  private final Function<String, C> clients;
  private final long seed;
  private final Step<C> step;
  private final Clock clock;
  private final AtomicLong nextProcess;
  private final AtomicBoolean stopping = new AtomicBoolean();
  private final List<Thread> threads = new ArrayList<>();

  Workers(String name, int count, double opsPerSecond, Duration requestTimeout, List<String> nodes,
      Function<String, C> clients, long seed, Step<C> step, Clock clock) {
    this(name, count, opsPerSecond, requestTimeout, nodes, clients, seed, step, clock, new AtomicLong());
  }

  /** Workers taking process numbers from {@code processes}: two groups of one workload share one. */
  Workers(String name, int count, double opsPerSecond, Duration requestTimeout, List<String> nodes,
      Function<String, C> clients, long seed, Step<C> step, Clock clock, AtomicLong processes) {
    this.nextProcess = processes;
    this.name = name;
    this.clock = clock;
    this.count = count;
    this.opsPerSecond = opsPerSecond;
    this.requestTimeout = requestTimeout;
    this.nodes = List.copyOf(nodes);
    this.clients = clients;
    this.seed = seed;
    this.step = step;
  }

  /** nextProcess takes a fresh process number (also for the final reads). */
  long nextProcess() {
    return nextProcess.getAndIncrement();
  }

  /** start starts the worker threads. */
  synchronized void start() {
    for (int w = 0; w < count; w++) {
      int worker = w;
      Thread t = new Thread(() -> run(worker), name + "-" + w);
      t.setDaemon(true);
      threads.add(t);
      t.start();
    }
  }

  /** stop asks the workers to finish their current op and waits for them (at most the request timeout + 5 s). */
  void stop() throws InterruptedException {
    stopping.set(true);
    long deadline = System.nanoTime() + requestTimeout.toNanos() + TimeUnit.SECONDS.toNanos(5);
    List<Thread> all;
    synchronized (this) {
      all = List.copyOf(threads);
    }
    for (Thread t : all) {
      long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
      t.join(Math.max(1, left));
      if (t.isAlive()) {
        log.warn("{} still busy after stop; its op stays open (info)", t.getName());
      }
    }
  }

  private void run(int index) {
    Worker w = new Worker(index);
    try {
      while (!stopping.get()) {
        long gap = w.gapNanos();
        if (gap > 0) {
          clock.sleepNanos(gap);
          if (stopping.get()) {
            break;
          }
        }
        if (w.step() == Outcome.DONE) {
          break;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      w.close();
    }
  }

  /**
   * runInterleaved runs the workers on the calling thread, without threads, one op at a time: each turn
   * {@code order} picks one of the workers that are not done, which draws its pause (not spent: the ops
   * of one thread cannot overlap anyway) and runs one op. It stops after {@code maxOps} ops or when every
   * worker is done, closes every client and returns the number of ops run. Not together with
   * {@link #start}.
   */
  int runInterleaved(Random order, int maxOps) {
    List<Worker> live = new ArrayList<>();
    List<Worker> all = new ArrayList<>();
    try {
      for (int w = 0; w < count; w++) {
        Worker worker = new Worker(w);
        all.add(worker);
        live.add(worker);
      }
      int ops = 0;
      while (ops < maxOps && !live.isEmpty()) {
        int at = order.nextInt(live.size());
        Worker w = live.get(at);
        w.gapNanos();
        Outcome outcome = w.step();
        if (outcome == Outcome.DONE) {
          live.remove(at);
        } else {
          ops++;
        }
      }
      return ops;
    } finally {
      all.forEach(Worker::close);
    }
  }

  /**
   * Worker is one worker's state: its own seeded random ({@code seed * 31 + index}), the node it enters
   * through, its current process and that process's client.
   */
  private final class Worker {
    private final int index;
    private final Random random;
    private final String node;
    private long process;
    private C client;

    Worker(int index) {
      this.index = index;
      this.random = new Random(seed * 31 + index);
      this.node = nodes.get(index % nodes.size());
      this.process = nextProcess();
      this.client = clients.apply(node);
    }

    /** gapNanos draws the pause before the next op (random, averaging {@code count / opsPerSecond}). */
    long gapNanos() {
      if (opsPerSecond <= 0) {
        return 0;
      }
      double meanGapMs = 1000.0 * count / opsPerSecond;
      return TimeUnit.MILLISECONDS.toNanos((long) (random.nextDouble() * 2 * meanGapMs));
    }

    /** step runs one op; after an op of unknown outcome the next one is a fresh process's, with a fresh client. */
    Outcome step() {
      Outcome outcome = step.run(index, random, process, client, node);
      if (outcome == Outcome.UNKNOWN) {
        client.close();
        process = nextProcess();
        client = clients.apply(node);
      }
      return outcome;
    }

    void close() {
      client.close();
    }
  }
}
