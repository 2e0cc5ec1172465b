package io.choir.jepsen;

import io.choir.checker.ClientOutcomes;
import io.choir.checker.Operation;
import io.choir.checker.Outcome;
import io.choir.client.ChoirClient;
import io.choir.client.KeyValueVersion;
import io.choir.client.ReadConsistency;
import io.choir.client.ScanResult;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * SetWorkload is Jepsen's set workload: processes add unique elements, and once the nemesis is healed
 * final reads check that every acknowledged add survived (see {@link SetChecker}).
 *
 * <p>Element {@code i} is the key {@code <prefix><i, 8 digits>} with the value {@code i}, put once by one
 * process: so an add is a plain write of its own key, recorded in the history as the checker's
 * {@code write} of that key and value, and a read of the set is a range scan of the prefix (the digits
 * keep the keys in numeric order). Elements come from one counter, so no element is added twice.
 *
 * <p>Outcomes of an add follow {@link RegisterWorkload}: ok (acknowledged), fail (the client's exception
 * promises it was not executed: {@link ClientOutcomes}' allow-list, e.g. unavailable, busy), info
 * (timeout or any other error: unknown; the worker goes on as a fresh process with a fresh client).
 *
 * <p>A final read ({@link #read}) scans the whole prefix page by page ({@link Settings#pageLimit()} keys a
 * page, each next page from the last key plus a zero byte) and is recorded as one {@link SetRead}; an
 * error on a page ends the read (fail or info by the same rule; either way it learnt nothing), which is
 * tried again until it succeeds or its budget runs out. A key under the prefix whose name or value is not
 * an element is read as element -1, which no one added.
 */
public final class SetWorkload {
  private static final Logger log = LoggerFactory.getLogger(SetWorkload.class);

  /** PREFIX is the key prefix of the elements; the cluster is fresh for every run, so it is fixed. */
  public static final String PREFIX = "set/";

  /** MAX_ELEMENTS keeps element keys at 8 digits (and so in numeric order). */
  static final long MAX_ELEMENTS = 100_000_000L;

  /** Settings of the workload. */
  public record Settings(int processes, double opsPerSecond, Duration requestTimeout, int pageLimit, long maxAdds) {
    /** Settings checks the bounds. */
    public Settings {
      if (processes < 1 || processes > 100) {
        throw new IllegalArgumentException("processes must be in 1..100");
      }
      if (pageLimit < 1 || pageLimit > 10_000) {
        throw new IllegalArgumentException("pageLimit must be in 1..10000 (the server's max_scan_limit)");
      }
      if (maxAdds < 1 || maxAdds > MAX_ELEMENTS) {
        throw new IllegalArgumentException("maxAdds must be in 1.." + MAX_ELEMENTS);
      }
    }

    /**
     * from takes the concurrency ({@code keys x threadsPerKey} processes), rate and timeout of the register
     * settings, so both workloads load the cluster alike; 1000 keys a scan page, at most 1,000,000 adds.
     */
    public static Settings from(RegisterWorkload.Settings r) {
      return new Settings(r.workers(), r.opsPerSecond(), r.requestTimeout(), 1000, 1_000_000);
    }
  }

  /** A client the workload can drive: the real ChoirClient, or a fake in unit tests. */
  public interface Client extends Workers.Client {
    void put(String key, String value);

    ScanResult scan(String startKey, String endKey, int limit, ReadConsistency consistency);

    /** of adapts a ChoirClient. */
    static Client of(ChoirClient c) {
      return new Client() {
        @Override
        public void put(String key, String value) {
          c.put(key, value);
        }

        @Override
        public ScanResult scan(String startKey, String endKey, int limit, ReadConsistency consistency) {
          return c.scan(startKey, endKey, limit, consistency);
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
  private final AtomicLong nextElement = new AtomicLong();
  private final Workers<Client> workers;
  private final Clock clock;

  /**
   * SetWorkload over {@code nodes} (names); {@code clients} makes a fresh client entering through a node;
   * {@code seed} drives the pauses between adds; on the system clock.
   */
  public SetWorkload(Settings settings, Recorder recorder, List<String> nodes, Function<String, Client> clients,
      long seed) {
    this(settings, recorder, nodes, clients, seed, Clock.SYSTEM);
  }

  /** SetWorkload pacing its workers and its final reads on {@code clock}. */
  SetWorkload(Settings settings, Recorder recorder, List<String> nodes, Function<String, Client> clients,
      long seed, Clock clock) {
    this.settings = settings;
    this.recorder = recorder;
    this.clients = clients;
    this.clock = clock;
    this.workers = new Workers<>("set", settings.processes(), settings.opsPerSecond(), settings.requestTimeout(), nodes,
        clients, seed, this::step, clock);
  }

  /**
   * runInterleaved runs the workers on the calling thread, a turn at a time in the order {@code order}
   * draws, until {@code maxOps} adds or every element is drawn (see {@link Workers#runInterleaved}): a
   * replayable run for unit tests.
   */
  int runInterleaved(Random order, int maxOps) {
    return workers.runInterleaved(order, maxOps);
  }

  /** key is the key of element {@code element}. */
  public static String key(long element) {
    return PREFIX + String.format(Locale.ROOT, "%08d", element);
  }

  /** start starts the worker threads. */
  public void start() {
    workers.start();
  }

  /** stop asks the workers to finish their current add and waits for them (at most the request timeout + 5 s). */
  public void stop() throws InterruptedException {
    workers.stop();
  }

  /** elementsDrawn is how many elements the workers have taken so far (each is added at most once). */
  public long elementsDrawn() {
    return Math.min(nextElement.get(), settings.maxAdds());
  }

  private Workers.Outcome step(int worker, Random random, long process, Client client, String node) {
    long element = nextElement.getAndIncrement();
    if (element >= settings.maxAdds()) {
      return Workers.Outcome.DONE;
    }
    return add(client, process, element, node) ? Workers.Outcome.UNKNOWN : Workers.Outcome.NEXT;
  }

  /**
   * add puts {@code element} through {@code client} as {@code process} and records it; returns true when
   * its outcome is unknown (info), so the process must be replaced.
   */
  boolean add(Client client, long process, long element, String node) {
    Operation op = Operation.write(process, key(element), element);
    recorder.invoke(op, node);
    try {
      client.put(op.key(), Long.toString(element));
      recorder.ok(process);
      return false;
    } catch (RuntimeException e) {
      String why = ClientOutcomes.describe(e);
      if (ClientOutcomes.outcome(e) == Outcome.FAIL) {
        recorder.fail(process, why);
        return false;
      }
      log.debug("add {} -> {}", element, why);
      recorder.info(process, why);
      return true;
    }
  }

  /** RETRY_PAUSE_NANOS is the longest pause between two attempts of a final read. */
  static final long RETRY_PAUSE_NANOS = TimeUnit.MILLISECONDS.toNanos(500);

  /**
   * read scans every element through {@code client} (entering through, or for a sequential read only
   * asking, {@code node}) as a fresh process, recorded as one {@link SetRead}; an attempt that ends in an
   * error is recorded as its error says (fail or info; after info the next attempt is a fresh process's)
   * and tried again after a pause of at most {@link #RETRY_PAUSE_NANOS} until one succeeds or {@code
   * budget} is spent. The caller closes the client.
   *
   * @return whether an attempt succeeded
   */
  public boolean read(String node, Client client, ReadConsistency consistency, Duration budget)
      throws InterruptedException {
    long deadline = clock.nanoTime() + budget.toNanos();
    long process = workers.nextProcess();
    String mode = consistency.name().toLowerCase(Locale.ROOT);
    do {
      recorder.setReadInvoke(process, PREFIX, mode, node);
      try {
        List<Long> elements = new ArrayList<>();
        int pages = scanAll(client, consistency, elements);
        recorder.setReadOk(process, elements, pages);
        return true;
      } catch (RuntimeException e) {
        String why = ClientOutcomes.describe(e);
        if (ClientOutcomes.outcome(e) == Outcome.FAIL) {
          recorder.setReadFail(process, why);
        } else {
          recorder.setReadInfo(process, why);
          process = workers.nextProcess();
        }
      }
      clock.sleepNanos(Math.max(0, Math.min(RETRY_PAUSE_NANOS, deadline - clock.nanoTime())));
    } while (clock.nanoTime() - deadline < 0);
    return false;
  }

  /** scanAll reads every page of the prefix into {@code out}; returns the number of pages. */
  private int scanAll(Client client, ReadConsistency consistency, List<Long> out) {
    String end = PREFIX.substring(0, PREFIX.length() - 1) + (char) (PREFIX.charAt(PREFIX.length() - 1) + 1);
    long maxPages = settings.maxAdds() / settings.pageLimit() + 2; // more means the scan does not advance
    String start = PREFIX;
    for (int pages = 1; pages <= maxPages; pages++) {
      ScanResult page = client.scan(start, end, settings.pageLimit(), consistency);
      for (KeyValueVersion kv : page.entries()) {
        out.add(element(kv.keyAsString(), kv.valueAsString()));
      }
      if (!page.more()) {
        return pages;
      }
      if (page.entries().isEmpty()) {
        throw new IllegalStateException("scan page " + pages + " is empty but says more");
      }
      start = page.entries().get(page.entries().size() - 1).keyAsString() + '\0';
    }
    throw new IllegalStateException("scan did not end after " + maxPages + " pages");
  }

  /** element is the element a key and value stand for, or -1 when they are not a well-formed element. */
  static long element(String key, String value) {
    if (!key.startsWith(PREFIX)) {
      return -1;
    }
    try {
      long e = Long.parseLong(key.substring(PREFIX.length()));
      return e >= 0 && key.equals(key(e)) && value.equals(Long.toString(e)) ? e : -1;
    } catch (NumberFormatException ex) {
      return -1;
    }
  }
}
