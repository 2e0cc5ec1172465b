package io.choir.server.metrics;

import io.choir.proto.Request;
import io.choir.proto.Status;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.TimeUnit;

/**
 * ClientLatency is the client request latency a replica measures, from the moment its connection
 * decoded a request to the moment the reply is handed to the socket: timers choir.client.write (put,
 * delete, compare-and-set, batch) and choir.client.read (get, scan), each by outcome: "ok" (executed:
 * OK, NOT_FOUND, CAS_FAILED) or "refused" (any other status: BUSY, NOT_PRIMARY, UNAVAILABLE, ...).
 * Other requests (status, sessions, membership) are not timed. One instance per replica; thread-safe.
 */
public final class ClientLatency {
  /** What a request is, for its timer; {@link #NONE} is not timed. */
  static final byte NONE = 0;
  static final byte WRITE = 1;
  static final byte READ = 2;

  private final Timer writeOk;
  private final Timer writeRefused;
  private final Timer readOk;
  private final Timer readRefused;

  public ClientLatency(MeterRegistry registry) {
    String write = "Client writes, from the request decoded to the reply handed to the socket";
    String read = "Client reads (get, scan), from the request decoded to the reply handed to the socket";
    this.writeOk = LatencyTimers.timer(registry, "choir.client.write", write, Tags.of("outcome", "ok"));
    this.writeRefused = LatencyTimers.timer(registry, "choir.client.write", write, Tags.of("outcome", "refused"));
    this.readOk = LatencyTimers.timer(registry, "choir.client.read", read, Tags.of("outcome", "ok"));
    this.readRefused = LatencyTimers.timer(registry, "choir.client.read", read, Tags.of("outcome", "refused"));
  }

  /** The kind of request r: WRITE, READ or NONE. */
  static byte kindOf(Request r) {
    return switch (r.getOpCase()) {
      case PUT, DELETE, COMPARE_AND_SET, BATCH -> WRITE;
      case GET, SCAN -> READ;
      default -> NONE;
    };
  }

  /** Records one request of kind, answered with status, that took nanos. */
  void record(byte kind, Status status, long nanos) {
    boolean ok = status == Status.OK || status == Status.NOT_FOUND || status == Status.CAS_FAILED;
    Timer t = kind == WRITE ? (ok ? writeOk : writeRefused) : (ok ? readOk : readRefused);
    t.record(Math.max(0, nanos), TimeUnit.NANOSECONDS);
  }
}
