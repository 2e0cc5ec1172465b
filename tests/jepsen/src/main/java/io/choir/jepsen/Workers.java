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
  private final AtomicLong nextProcess = new AtomicLong();
  private final AtomicBoolean stopping = new AtomicBoolean();
  private final List<Thread> threads = new ArrayList<>();

  Workers(String name, int count, double opsPerSecond, Duration requestTimeout, List<String> nodes,
      Function<String, C> clients, long seed, Step<C> step) {
    this.name = name;
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

  private void run(int worker) {
    Random random = new Random(seed * 31 + worker);
    String node = nodes.get(worker % nodes.size());
    long process = nextProcess();
    C client = clients.apply(node);
    double meanGapMs = opsPerSecond <= 0 ? 0 : 1000.0 * count / opsPerSecond;
    try {
      while (!stopping.get()) {
        if (meanGapMs > 0) {
          Thread.sleep((long) (random.nextDouble() * 2 * meanGapMs));
          if (stopping.get()) {
            break;
          }
        }
        Outcome outcome = step.run(worker, random, process, client, node);
        if (outcome == Outcome.DONE) {
          break;
        }
        if (outcome == Outcome.UNKNOWN) {
          client.close();
          process = nextProcess();
          client = clients.apply(node);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      client.close();
    }
  }
}
