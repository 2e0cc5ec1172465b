package io.choir.bench.engine;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * FakeDriver is an in-memory store whose operations complete on another thread after a fixed delay;
 * it counts what it sees (operations in flight at most, writes, reads) and can fail the first few.
 */
final class FakeDriver implements BenchDriver {
  final ConcurrentHashMap<String, byte[]> data = new ConcurrentHashMap<>();
  final AtomicInteger inFlight = new AtomicInteger();
  final AtomicInteger maxInFlight = new AtomicInteger();
  final AtomicLong writes = new AtomicLong();
  final AtomicLong reads = new AtomicLong();
  final AtomicLong calls = new AtomicLong();
  private final ScheduledExecutorService timer = Executors.newScheduledThreadPool(2);
  private final long delayMicros;
  private final long failFirst;

  FakeDriver(long delayMicros, long failFirst) {
    this.delayMicros = delayMicros;
    this.failFirst = failFirst;
  }

  private CompletableFuture<Object> later(Runnable r) {
    int now = inFlight.incrementAndGet();
    maxInFlight.accumulateAndGet(now, Math::max);
    long n = calls.incrementAndGet();
    CompletableFuture<Object> f = new CompletableFuture<>();
    if (n <= failFirst) {
      inFlight.decrementAndGet();
      f.completeExceptionally(new IllegalStateException("failing on purpose"));
      return f;
    }
    timer.schedule(() -> {
      r.run();
      inFlight.decrementAndGet();
      f.complete(Boolean.TRUE);
    }, delayMicros, TimeUnit.MICROSECONDS);
    return f;
  }

  @Override
  public CompletableFuture<?> write(byte[] key, byte[] value) {
    writes.incrementAndGet();
    return later(() -> data.put(new String(key), value));
  }

  @Override
  public CompletableFuture<?> read(byte[] key) {
    reads.incrementAndGet();
    return later(() -> data.get(new String(key)));
  }

  @Override
  public String name() {
    return "fake";
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
