package io.choir.client;

import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;

/**
 * The real client library (DeterministicClient: the production dispatcher, sessions, routing and
 * timeouts) against {@link ModelCluster} on simulated time, over many seeds, with view changes whose
 * entries may still commit, paused replicas, dropped connections, expiring sessions, lagging backups
 * and (in some seeds) a session table too small for every client. For every write it checks what the
 * client promised against what the model executed:
 * <ul>
 *   <li>no write executes twice (same request id across retries, saved replies, the session gate);
 *   <li>OK means executed once; UnavailableException and BusyException ("not executed") mean it never
 *       executed, not even later; ChoirTimeoutException and SessionExpiredException ("unknown") allow
 *       either; no other exception is thrown;
 *   <li>every call ends by its deadline, and close() leaves no session behind that the client knew of
 *       (a registration whose answer was lost after it committed opens a session whose id the client
 *       never learns: it expires unused; such orphans are counted).
 * </ul>
 * Seeds: -Dchoir.test.seed=BASE -Dchoir.test.seeds=N (a failure prints the one-seed replay).
 */
class ClientPromisesUnderFaultsTest {
  private static final long MS = 1_000_000L;

  private record Op(String key, boolean write, long submitNs, long deadlineNs, CompletableFuture<?> future,
      long[] doneNs) {}

  @Test
  void shouldNeverPromiseNotExecutedForAWriteThatExecutedNorExecuteAnyWriteTwice() {
    long base = Long.getLong("choir.test.seed", 1L);
    int seeds = Integer.getInteger("choir.test.seeds", 300);
    System.out.println("client promises: seeds " + base + ".." + (base + seeds - 1)
        + " (replay one: -Dchoir.test.seed=S -Dchoir.test.seeds=1)");
    Map<String, Integer> outcomes = new TreeMap<>();
    long startNs = System.nanoTime();
    for (long seed = base; seed < base + seeds; seed++) {
      List<String> problems = new ArrayList<>();
      List<String> faults = run(seed, outcomes, problems);
      if (!problems.isEmpty()) {
        fail("seed " + seed + " (replay: -Dchoir.test.seed=" + seed + " -Dchoir.test.seeds=1): " + problems
            + "\nfaults: " + faults);
      }
    }
    System.out.println("client promises: " + seeds + " seeds in " + (System.nanoTime() - startNs) / MS
        + " ms, outcomes " + outcomes);
  }

  private static List<String> run(long seed, Map<String, Integer> outcomes, List<String> problems) {
    Random random = new Random(seed);
    SimClock clock = new SimClock();
    SimNet net = new SimNet(clock, new Random(random.nextLong()), MS, 5 * MS);
    int nClients = 1 + random.nextInt(2);
    boolean smallTable = random.nextInt(6) == 0;
    ModelCluster cluster = new ModelCluster(clock, net, new Random(random.nextLong()), 3, smallTable ? 1 : 1_000);
    cluster.tracing = Boolean.getBoolean("choir.test.verbose");
    List<DeterministicClient> clients = new ArrayList<>();
    List<Op> ops = new ArrayList<>();
    long t0 = clock.nanoTime();
    for (int c = 0; c < nClients; c++) {
      List<String> endpoints = new ArrayList<>(cluster.addresses);
      Collections.shuffle(endpoints, random);
      long requestTimeoutMs = 2_000 + random.nextInt(4_000);
      DeterministicClient client = DeterministicClient.builder()
          .endpoints(endpoints)
          .requestTimeout(Duration.ofMillis(requestTimeoutMs))
          .attemptTimeout(Duration.ofMillis(300 + random.nextInt(1_200)))
          .maxInFlight(1 + random.nextInt(6))
          .clientId(0x100 + c)
          .random(new Random(random.nextLong()))
          .scheduler(clock)
          .transport(net.newClientTransport())
          .build();
      clients.add(client);
      for (int i = 0; i < 30; i++) {
        boolean write = random.nextInt(5) != 0;
        String key = "c" + c + "-k" + i;
        long atNs = t0 + random.nextInt(20_000) * MS;
        long[] doneNs = {-1};
        CompletableFuture<Object> future = new CompletableFuture<>();
        ops.add(new Op(key, write, atNs, atNs + requestTimeoutMs * MS, future, doneNs));
        clock.schedule(() -> {
          CompletableFuture<?> f = write ? client.async().put(key, "v") : client.async().get(key);
          f.whenComplete((v, e) -> {
            doneNs[0] = clock.nanoTime();
            if (e != null) {
              future.completeExceptionally(e);
            } else {
              future.complete(v);
            }
          });
        }, atNs - t0);
      }
    }
    for (int f = 0; f < 10; f++) {
      long atNs = random.nextInt(20_000) * MS;
      int kind = random.nextInt(7);
      long electionNs = (100 + random.nextInt(1_000)) * MS;
      int replica = random.nextInt(3);
      long pauseNs = (200 + random.nextInt(3_800)) * MS;
      clock.schedule(() -> {
        switch (kind) {
          case 0 -> cluster.viewChange();
          case 1 -> cluster.pause(random.nextBoolean() ? cluster.primary() : replica, pauseNs);
          case 2 -> {
            List<SimNet.Conn> open = net.openConnections();
            if (!open.isEmpty()) {
              cluster.faults.add(clock.nanoTime() / MS + "ms drop a connection");
              open.get(random.nextInt(open.size())).close();
            }
          }
          case 3 -> cluster.expireSessions();
          case 4 -> cluster.isolatePrimary(electionNs);
          case 5 -> {
            // A firewall between the clients and one replica (often the primary); the replicas still
            // reach each other. Requests queued meanwhile arrive when it heals, unless reset first.
            int target = random.nextBoolean() ? cluster.primary() : replica;
            cluster.faults.add(clock.nanoTime() / MS + "ms cut clients from " + target + " for " + pauseNs / MS + "ms");
            net.cut(cluster.addresses.get(target), pauseNs);
          }
          default -> {
            // The answers on one connection are lost and the sessions expire at once: retries of
            // writes that executed race a re-registration triggered by the other writes.
            List<SimNet.Conn> open = net.openConnections();
            if (!open.isEmpty()) {
              cluster.faults.add(clock.nanoTime() / MS + "ms drop a connection");
              open.get(random.nextInt(open.size())).close();
            }
            cluster.expireSessions();
          }
        }
      }, atNs);
    }
    // Faults start within 20 s; a pause or a view change lasts at most 4 s: by 30 s all is healthy.
    long faultsOverNs = t0 + 30_000 * MS;
    clock.runUntil(() -> ops.stream().allMatch(o -> o.future().isDone()) && cluster.quiet()
        && clock.nanoTime() >= faultsOverNs, t0 + 600_000 * MS);
    // The queue may run dry inside a view change (its end is a time, not a task): move time on.
    clock.advance(Math.max(0, faultsOverNs - clock.nanoTime()));
    cluster.calm();
    if (!ops.stream().allMatch(o -> o.future().isDone())) {
      problems.add("calls never completed");
    }
    // Let the last entries commit before judging, then close every client.
    clock.advance(100 * MS);
    if (Boolean.getBoolean("choir.test.verbose")) {
      System.out.println("closing at " + (clock.nanoTime() - t0) / MS + " ms, quiet " + cluster.quiet());
    }
    List<CompletableFuture<Void>> closing = new ArrayList<>();
    for (DeterministicClient client : clients) {
      closing.add(client.closeAsync());
    }
    clock.runUntil(() -> closing.stream().allMatch(CompletableFuture::isDone), clock.nanoTime() + 60_000 * MS);
    List<Long> leftBehind = new ArrayList<>();
    for (long session : cluster.sessions.keySet()) {
      if (cluster.usedSessions.contains(session)) {
        leftBehind.add(session);
      } else {
        outcomes.merge("orphan sessions", 1, Integer::sum);
      }
    }
    if (!leftBehind.isEmpty() && !smallTable) {
      problems.add("sessions left behind after close: " + leftBehind);
    }
    problems.addAll(cluster.violations);
    for (Map.Entry<String, Integer> e : cluster.executions.entrySet()) {
      if (e.getValue() > 1) {
        problems.add(e.getKey() + " executed " + e.getValue() + " times");
      }
    }
    for (Op op : ops) {
      String outcome = outcome(op.future());
      outcomes.merge((op.write() ? "put " : "get ") + outcome, 1, Integer::sum);
      int executed = cluster.executions.getOrDefault(op.key(), 0);
      if (op.doneNs()[0] > op.deadlineNs()) {
        problems.add(op.key() + " ended " + (op.doneNs()[0] - op.deadlineNs()) / MS + " ms after its deadline");
      }
      if (!op.write()) {
        if (!outcome.equals("ok") && !outcome.equals("unknown") && !outcome.equals("unavailable")
            && !outcome.equals("busy")) {
          problems.add("get " + op.key() + " ended in " + outcome);
        }
        continue;
      }
      switch (outcome) {
        case "ok" -> {
          if (executed != 1) {
            problems.add(op.key() + " acknowledged but executed " + executed + " times");
          }
        }
        case "unavailable", "busy" -> {
          if (executed != 0) {
            problems.add(op.key() + " failed as " + outcome + " (\"not executed\") but executed: "
                + failure(op.future()).getMessage());
          }
        }
        case "unknown", "session_expired" -> { }
        default -> problems.add(op.key() + " ended in " + outcome + ": " + failure(op.future()));
      }
    }
    if (cluster.tracing) {
      cluster.trace.forEach(System.out::println);
    }
    return cluster.faults;
  }

  private static String outcome(CompletableFuture<?> f) {
    if (!f.isDone()) {
      return "pending";
    }
    if (!f.isCompletedExceptionally()) {
      return "ok";
    }
    Throwable e = failure(f);
    if (e instanceof SessionExpiredException) {
      return "session_expired";
    }
    if (e instanceof ChoirTimeoutException) {
      return "unknown";
    }
    if (e instanceof UnavailableException) {
      return "unavailable";
    }
    if (e instanceof BusyException) {
      return "busy";
    }
    return e.getClass().getSimpleName();
  }

  private static Throwable failure(CompletableFuture<?> f) {
    try {
      f.join();
      return null;
    } catch (CompletionException e) {
      return Futures.unwrap(e);
    }
  }
}
