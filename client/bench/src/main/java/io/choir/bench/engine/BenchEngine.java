package io.choir.bench.engine;

import java.lang.management.ManagementFactory;
import java.lang.management.OperatingSystemMXBean;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * BenchEngine runs a closed-loop workload against a {@link BenchDriver}: {@code clients} workers, each
 * issuing its next operation only when its previous one has completed, so at most {@code clients}
 * operations are ever in flight. Workers are callbacks, not threads: 64 clients need no 64 threads.
 *
 * <p>Latencies (microseconds) go into an HdrHistogram {@link Recorder}; every tick the interval
 * histogram is taken, reported to the listener (the progress line) and, once the warmup is over, added
 * to the total and to the time series. Failed operations are counted by exception type and never
 * recorded as latencies. Operations still in flight when the time is up are waited for but not counted.
 */
public final class BenchEngine {
  /** Largest latency the histograms track: one hour in microseconds (longer ones are clamped). */
  static final long HIGHEST_MICROS = TimeUnit.HOURS.toMicros(1);
  /** How long the end waits for operations still in flight. */
  static final long DRAIN_NANOS = TimeUnit.SECONDS.toNanos(30);

  /** Listener hears about every tick (warmup ones included); the progress line is one. */
  public interface Listener {
    /** Called once at the end of every interval. */
    void onTick(Tick tick);

    /** Called right before measurement starts (after the warmup), before any measured interval. */
    default void beforeMeasure() {}
  }

  /**
   * Tick is one interval: its end in seconds since the start of the run, whether it was warmup, the
   * operations it completed, their latency histogram (microseconds) and the errors it saw.
   */
  public record Tick(int index, boolean warmup, double elapsedSeconds, double intervalSeconds,
      Histogram histogram, long errors, int inFlight) {
    public double opsPerSecond() {
      return intervalSeconds <= 0 ? 0 : histogram.getTotalCount() / intervalSeconds;
    }
  }

  private static final int WARMUP = 0;
  private static final int MEASURE = 1;
  private static final int DONE = 2;

  private final BenchDriver driver;
  private final BenchConfig config;
  private final Listener listener;
  private final byte[][] keys;
  private final byte[] value;
  private final Recorder writeRecorder = new Recorder(HIGHEST_MICROS, 3);
  private final Recorder readRecorder = new Recorder(HIGHEST_MICROS, 3);
  private final AtomicInteger inFlight = new AtomicInteger();
  private final AtomicInteger maxInFlight = new AtomicInteger();
  private final AtomicLong intervalErrors = new AtomicLong();
  private final LongAdder issuedWrites = new LongAdder();
  private final LongAdder issuedReads = new LongAdder();
  private final Map<String, LongAdder> measuredErrors = new ConcurrentHashMap<>();
  private final Map<String, LongAdder> warmupErrors = new ConcurrentHashMap<>();
  private final ScheduledExecutorService loop;
  /** With a rate: the next operation's slot number in the schedule that starts at paceStart. */
  private final AtomicLong paceSlots = new AtomicLong();
  private volatile long paceStart;
  private volatile int phase = WARMUP;
  private volatile boolean running;

  private BenchEngine(BenchDriver driver, BenchConfig config, Listener listener) {
    this.driver = driver;
    this.config = config;
    this.listener = listener == null ? t -> {} : listener;
    this.keys = keys(config.keys());
    this.value = value(config.valueSize(), config.seed());
    this.loop = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "bench-loop");
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * Runs the workload to the end and returns the measured result. The driver is not closed.
   *
   * @param driver the store to drive
   * @param config the workload
   * @param listener hears every tick (may be null)
   * @return the result of the measured part
   * @throws InterruptedException when the calling thread is interrupted (the workers stop)
   */
  public static BenchResult run(BenchDriver driver, BenchConfig config, Listener listener)
      throws InterruptedException {
    BenchEngine engine = new BenchEngine(driver, config, listener);
    try {
      return engine.run();
    } finally {
      engine.running = false;
      engine.loop.shutdownNow();
    }
  }

  /**
   * One independent random stream per worker, all from seed (the same seed gives the same streams).
   * Split, not seeded with seed + i x the golden gamma: SplittableRandom(s) steps its state by that
   * very gamma, so such seeds gave every worker the same stream shifted by one draw, and 64 workers
   * chose nearly the same keys at nearly the same time (a soak's 50,000 keys took half an hour to be
   * written once instead of two minutes).
   */
  static List<SplittableRandom> workerRandoms(long seed, int workers) {
    SplittableRandom base = new SplittableRandom(seed);
    List<SplittableRandom> out = new ArrayList<>(workers);
    for (int i = 0; i < workers; i++) {
      out.add(base.split());
    }
    return out;
  }

  /** The keys of a key space of n: "bench/" and the index, zero-padded to one width. */
  static byte[][] keys(int n) {
    int width = String.valueOf(n - 1).length();
    byte[][] out = new byte[n][];
    for (int i = 0; i < n; i++) {
      out[i] = String.format("bench/%0" + width + "d", i).getBytes(StandardCharsets.UTF_8);
    }
    return out;
  }

  /** A value of size printable random bytes (not compressible to nothing), fixed by the seed. */
  static byte[] value(int size, long seed) {
    SplittableRandom r = new SplittableRandom(seed ^ 0x5DEECE66DL);
    byte[] v = new byte[size];
    for (int i = 0; i < size; i++) {
      v[i] = (byte) ('a' + r.nextInt(26));
    }
    return v;
  }

  private BenchResult run() throws InterruptedException {
    Instant startedAt = Instant.now();
    long tickNanos = config.tick().toNanos();
    long start = System.nanoTime();
    long measureStart = start + config.warmup().toNanos();
    long end = measureStart + config.duration().toNanos();
    List<Long> deadlines = new ArrayList<>();
    for (long d = start + tickNanos; d < measureStart; d += tickNanos) {
      deadlines.add(d);
    }
    if (measureStart > start) {
      deadlines.add(measureStart);
    }
    for (long d = measureStart + tickNanos; d < end; d += tickNanos) {
      deadlines.add(d);
    }
    deadlines.add(end);

    if (measureStart == start) {
      listener.beforeMeasure();
      phase = MEASURE;
    }
    paceStart = start;
    running = true;
    writeRecorder.reset();
    readRecorder.reset();
    for (SplittableRandom rnd : workerRandoms(config.seed(), config.clients())) {
      loop.execute(() -> issue(rnd));
    }

    Histogram total = new Histogram(HIGHEST_MICROS, 3);
    long writes = 0;
    long reads = 0;
    List<BenchResult.Point> series = new ArrayList<>();
    long lastSwap = start;
    long measuredFrom = measureStart;
    long cpuFrom = processCpuNanos();
    long cpuTo = cpuFrom;
    long measuredTo = end;
    for (int i = 0; i < deadlines.size(); i++) {
      long deadline = deadlines.get(i);
      sleepUntil(deadline);
      boolean warmupTick = deadline <= measureStart && measureStart > start;
      if (deadline == end) {
        running = false;
      }
      // Fresh histograms every tick (no recycling): listeners may keep the ticks.
      Histogram intervalWrites = writeRecorder.getIntervalHistogram();
      Histogram intervalReads = readRecorder.getIntervalHistogram();
      Histogram interval = intervalWrites.copy();
      interval.add(intervalReads);
      long now = System.nanoTime();
      long errors = intervalErrors.getAndSet(0);
      if (warmupTick && deadline == measureStart) {
        // The errors counted from here on belong to the measurement.
        listener.beforeMeasure();
        phase = MEASURE;
        // With a rate the schedule starts again here: a backlog of the warmup (a JVM warming up, a
        // view change) is not carried into the measurement as latency.
        paceStart = now;
        paceSlots.set(0);
        measuredFrom = now;
        cpuFrom = processCpuNanos();
      }
      if (deadline == end) {
        phase = DONE;
        measuredTo = now;
        cpuTo = processCpuNanos();
      }
      double intervalSeconds = (now - lastSwap) / 1e9;
      lastSwap = now;
      Tick tick = new Tick(i, warmupTick, (now - start) / 1e9, intervalSeconds, interval, errors, inFlight.get());
      if (!warmupTick) {
        total.add(interval);
        writes += intervalWrites.getTotalCount();
        reads += intervalReads.getTotalCount();
        series.add(BenchResult.Point.of((now - measuredFrom) / 1e9, intervalSeconds, interval, errors));
      }
      listener.onTick(tick);
    }
    running = false;
    phase = DONE;
    long drainDeadline = System.nanoTime() + DRAIN_NANOS;
    while (inFlight.get() > 0 && System.nanoTime() < drainDeadline) {
      Thread.sleep(5);
    }
    return new BenchResult(driver.name(), driver.describe(), config, startedAt,
        (measuredTo - measuredFrom) / 1e9, total, writes, reads,
        snapshot(measuredErrors), snapshot(warmupErrors), series, maxInFlight.get(), inFlight.get(),
        issuedWrites.sum(), issuedReads.sum(), cpuFrom < 0 ? -1 : (cpuTo - cpuFrom) / 1e9,
        ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
  }

  /** CPU time this process (the benchmark client) has used, or -1 when the JVM cannot tell. */
  static long processCpuNanos() {
    OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
    // Named in full: the JDK's extension of the imported java.lang.management interface has the same name.
    if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
      return sun.getProcessCpuTime();
    }
    return -1;
  }

  private static Map<String, Long> snapshot(Map<String, LongAdder> m) {
    Map<String, Long> out = new TreeMap<>();
    m.forEach((k, v) -> out.put(k, v.sum()));
    return out;
  }

  private static void sleepUntil(long deadline) throws InterruptedException {
    long left;
    while ((left = deadline - System.nanoTime()) > 0) {
      LockSupport.parkNanos(left);
      if (Thread.interrupted()) {
        throw new InterruptedException();
      }
    }
  }

  /**
   * Issues one worker's next operation; the worker goes on from the operation's completion. A future
   * that is already complete hands the next issue to the loop thread (no recursion, no starving of the
   * other workers by a synchronous driver).
   */
  private void issue(SplittableRandom rnd) {
    if (!running) {
      return;
    }
    if (config.rate() > 0) {
      long slot = paceStart + (long) (paceSlots.getAndIncrement() * 1e9 / config.rate());
      long wait = slot - System.nanoTime();
      if (wait > 0) {
        try {
          loop.schedule(() -> send(rnd, slot), wait, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException e) {
          // the run is over
        }
        return;
      }
      send(rnd, slot); // behind the schedule: at once, and the latency counts from the slot
      return;
    }
    send(rnd, System.nanoTime());
  }

  /** Sends one worker's operation, timed from t0 (now, or its scheduled slot with a rate). */
  private void send(SplittableRandom rnd, long t0) {
    if (!running) {
      return;
    }
    boolean write = config.writeRatio() >= 1.0
        || (config.writeRatio() > 0.0 && rnd.nextDouble() < config.writeRatio());
    byte[] key = keys[rnd.nextInt(keys.length)];
    int now = inFlight.incrementAndGet();
    maxInFlight.accumulateAndGet(now, Math::max);
    (write ? issuedWrites : issuedReads).increment();
    CompletableFuture<?> f;
    try {
      f = write ? driver.write(key, value) : driver.read(key);
    } catch (RuntimeException e) {
      f = CompletableFuture.failedFuture(e);
    }
    if (f.isDone()) {
      complete(write, t0, failure(f));
      try {
        loop.execute(() -> issue(rnd));
      } catch (RejectedExecutionException e) {
        // the run is over
      }
      return;
    }
    f.whenComplete((r, t) -> {
      complete(write, t0, t);
      issue(rnd);
    });
  }

  private static Throwable failure(CompletableFuture<?> f) {
    try {
      f.get();
      return null;
    } catch (ExecutionException | CancellationException e) {
      return e;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return e;
    }
  }

  private void complete(boolean write, long t0, Throwable failure) {
    long micros = (System.nanoTime() - t0) / 1000;
    int p = phase;
    try {
      if (p == DONE) {
        return;
      }
      if (failure == null) {
        (write ? writeRecorder : readRecorder).recordValue(Math.min(Math.max(micros, 0), HIGHEST_MICROS));
      } else {
        intervalErrors.incrementAndGet();
        (p == MEASURE ? measuredErrors : warmupErrors)
            .computeIfAbsent(errorType(failure), k -> new LongAdder()).increment();
      }
    } finally {
      inFlight.decrementAndGet();
    }
  }

  /** The simple class name of the real cause (CompletionException and ExecutionException unwrapped). */
  static String errorType(Throwable t) {
    while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
      t = t.getCause();
    }
    return t.getClass().getSimpleName();
  }
}
