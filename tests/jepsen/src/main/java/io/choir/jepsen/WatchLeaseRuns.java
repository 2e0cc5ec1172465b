package io.choir.jepsen;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.client.ChoirClient;
import io.choir.client.KeyValueVersion;
import io.choir.client.ReadConsistency;
import io.choir.client.ScanResult;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** WatchLeaseRuns holds the watch and lease workloads' parts of a {@link JepsenRun}. */
final class WatchLeaseRuns {
  /** LEASE_TTL is the lessees' TTL: well above the minimum (2 x the 500 ms election timeout). */
  static final Duration LEASE_TTL = Duration.ofSeconds(3);

  private WatchLeaseRuns() {}

  /** WatchRun: writers and watchers, final reads, the watch checker. */
  static final class WatchRun implements JepsenRun.Workload {
    private final WatchWorkload workload;
    private List<WatchChecker.Final> finals;

    WatchRun(JepsenRun.Options o, Cluster c, Recorder recorder) {
      Duration timeout = o.register().requestTimeout();
      this.workload = new WatchWorkload(4, Math.min(40, o.register().opsPerSecond()), timeout, recorder,
          Targets.names(c), name -> WatchWorkload.Client.of(c.client(c.node(name), timeout)),
          name -> c.client(c.node(name), timeout), o.seed(), o.timeLimit().dividedBy(2));
    }

    @Override
    public void start() {
      workload.start();
    }

    @Override
    public void stop() throws InterruptedException {
      workload.stop();
    }

    @Override
    public String progress() {
      return workload.progress();
    }

    @Override
    public String finalReads(String reader) throws InterruptedException {
      finals = workload.finalReads(reader, Duration.ofSeconds(60));
      return finals == null ? "not every key could be read in 60 s" : finals.size() + " keys: " + finals;
    }

    @Override
    public String replicaReads() {
      return "";
    }

    @Override
    public String check(Map<String, ObjectNode> checkers, PrintStream out) {
      WatchChecker.Result r = WatchChecker.check(workload.writes(), workload.watchers(), finals);
      checkers.put("watch", r.toJson());
      out.println("watch: " + Results.show(Results.valid(r.verdict())) + ": " + r.summary());
      r.watchers().forEach(w -> out.println("  " + w));
      return null;
    }
  }

  /** LeaseRun: lessees and readers, final scans of every replica, the lease checker. */
  static final class LeaseRun implements JepsenRun.Workload {
    private final Cluster cluster;
    private final Recorder recorder;
    private final LeaseWorkload workload;
    private final Duration timeout;
    private final List<LeaseChecker.Scan> scans = new ArrayList<>();

    LeaseRun(JepsenRun.Options o, Cluster c, Recorder recorder) {
      this.cluster = c;
      this.recorder = recorder;
      this.timeout = o.register().requestTimeout();
      this.workload = new LeaseWorkload(4, 3, 30, LEASE_TTL, timeout, recorder, Targets.names(c),
          name -> LeaseWorkload.Client.of(c.client(c.node(name), timeout)), o.seed());
    }

    @Override
    public void start() {
      workload.start();
    }

    @Override
    public void stop() throws InterruptedException {
      workload.stop();
    }

    @Override
    public String progress() {
      return workload.progress();
    }

    /**
     * finalReads waits past the last lease's deadline plus the base bound, then scans the prefix through
     * {@code reader} (linearizable) and on each replica alone (sequential), each again every 500 ms until
     * it is empty or 30 s have passed; the last scan of each is what the checker sees.
     */
    @Override
    public String finalReads(String reader) throws InterruptedException {
      long wait = workload.latestUpper() + LeaseChecker.BASE_NANOS - recorder.now();
      if (wait > 0) {
        TimeUnit.NANOSECONDS.sleep(wait);
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      List<String> took = new ArrayList<>();
      scans.add(scanUntilEmpty("primary " + reader + " (linearizable)", cluster.client(cluster.node(reader), timeout),
          ReadConsistency.LINEARIZABLE, deadline, took));
      for (Cluster.Node n : cluster.nodes()) {
        ChoirClient only = cluster.clientBuilder(List.of(n.endpoint())).requestTimeout(timeout)
            .readConsistency(ReadConsistency.SEQUENTIAL).eventLoopThreads(1).build();
        scans.add(scanUntilEmpty(n.name() + " (sequential)", only, ReadConsistency.SEQUENTIAL, deadline, took));
      }
      return String.join("; ", took);
    }

    private LeaseChecker.Scan scanUntilEmpty(String where, ChoirClient c, ReadConsistency rc, long deadline,
        List<String> took) throws InterruptedException {
      LeaseChecker.Scan last = new LeaseChecker.Scan(where, List.of(), "no scan in time");
      try (c) {
        do {
          try {
            ScanResult r = c.scan(LeaseWorkload.PREFIX, "lease0", 10_000, rc);
            List<String> keys = r.entries().stream().map(KeyValueVersion::keyAsString).toList();
            last = new LeaseChecker.Scan(where, keys, null);
            if (keys.isEmpty()) {
              break;
            }
          } catch (RuntimeException e) {
            last = new LeaseChecker.Scan(where, List.of(), e.toString());
          }
          Thread.sleep(500);
        } while (System.nanoTime() < deadline);
      }
      took.add(where + ": " + (last.error() != null ? last.error() : last.keys().size() + " keys at "
          + (recorder.now() - workload.latestUpper()) / 1_000_000 + " ms past the last deadline"));
      return last;
    }

    @Override
    public String replicaReads() {
      return "";
    }

    @Override
    public String check(Map<String, ObjectNode> checkers, PrintStream out) {
      List<LeaseChecker.Fault> faults = Periods.of(recorder.nemesisEvents(), recorder.now()).stream()
          .map(p -> new LeaseChecker.Fault(p.startNanos(), p.endNanos())).toList();
      LeaseChecker.Result r = LeaseChecker.check(workload.lives(), workload.reads(), faults, scans);
      checkers.put("lease", r.toJson());
      out.println("lease: " + Results.show(Results.valid(r.verdict())) + ": " + r.summary());
      return null;
    }
  }
}
