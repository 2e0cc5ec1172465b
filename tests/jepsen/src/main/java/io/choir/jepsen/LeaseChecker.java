package io.choir.jepsen;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * LeaseChecker checks the reads of a {@link LeaseWorkload} against its leases' lives (pure; all times are
 * the history's nanoseconds). Each lease has one key of its own, put once, attached to it.
 *
 * <p><b>Never early.</b> An acknowledged grant or keep-alive sent at {@code s} was applied at some
 * {@code a >= s}: the lease lives at least until {@code a + TTL}, and it was alive at {@code a} (an
 * expired lease cannot be kept alive). So a linearizable read that saw the key absent, invoked after the
 * put was acknowledged and completed before {@code s + TTL} for any such {@code s}, saw it deleted while
 * its lease was alive, unless a revoke had been invoked before the read completed.
 *
 * <p><b>Bounded late.</b> The server's deadline is at most {@code U = c + TTL}, {@code c} the latest
 * completion time of a grant or keep-alive that may have been applied (acknowledged, or of unknown
 * outcome: its request reached the primary before the client gave up); an acknowledged revoke bounds it
 * by its completion. docs/lease.md bounds the lateness with a steady primary by the election timeout plus
 * 1 s ({@link #BASE_NANOS}: 1.5 s with the default 500 ms). A read invoked after {@code U + allowed} that
 * still sees the key is late, where {@code allowed} is BASE plus, for every nemesis period overlapping
 * {@code [U, read invoke]}, that period's length plus BASE (a failover or recovery after it). A read
 * invoked after an acknowledged revoke completed must see the key absent (no bound: a revoke is a write).
 *
 * <p><b>At the end.</b> After the heal and the last deadline plus the bound, a scan of the prefix on
 * every replica (sequential) and through the primary (linearizable) must find no key: every lease ended.
 * A replica that could not be scanned makes the verdict unknown.
 */
public final class LeaseChecker {
  /** BASE_NANOS is the documented late bound with a steady primary: election timeout (500 ms) + 1 s. */
  public static final long BASE_NANOS = 1_500_000_000L;

  private LeaseChecker() {}

  /** Alive is a grant or keep-alive: sent at {@code send}, completed at {@code complete}, with an outcome. */
  public record Alive(long send, long complete, Outcome outcome) {}

  /**
   * Life is one lease: its key, TTL, grant and keep-alives, the put of its key, and its revoke if any
   * ({@code revokeOutcome} null when none was sent).
   */
  public record Life(long id, String key, long ttlNanos, List<Alive> alive, Outcome putOutcome, long putComplete,
      long revokeInvoke, long revokeComplete, Outcome revokeOutcome) {
    /** upper is U: the latest the server's deadline can be. */
    long upper() {
      long c = Long.MIN_VALUE;
      for (Alive a : alive) {
        if (a.outcome() != Outcome.FAIL) {
          c = Math.max(c, a.complete());
        }
      }
      long u = c + ttlNanos;
      return revokeOutcome == Outcome.OK ? Math.min(u, revokeComplete) : u;
    }
  }

  /** Read is a linearizable read of a lease's key. */
  public record Read(String key, long invoke, long complete, boolean present) {}

  /** Scan is a final scan of the prefix on one replica (or the primary): the keys found, or an error. */
  public record Scan(String where, List<String> keys, String error) {}

  /** Fault is a nemesis period. */
  public record Fault(long start, long end) {}

  /** Result of a check, with the lateness figures (ms). */
  public record Result(Verdict verdict, List<String> problems, int leases, int revoked, int reads,
      long maxPresentPastUpperMs, long maxFirstAbsentPastUpperMs, long minEarlyMarginMs, List<String> scans) {
    /** toJson is the checker's entry in results.json. */
    public ObjectNode toJson() {
      ObjectNode o = Json.MAPPER.createObjectNode();
      o.set("valid", Results.valid(verdict));
      o.put("leases", leases);
      o.put("revoked", revoked);
      o.put("readsChecked", reads);
      o.put("maxPresentPastDeadlineMs", maxPresentPastUpperMs);
      o.put("maxFirstAbsentPastDeadlineMs", maxFirstAbsentPastUpperMs);
      o.put("minAbsentReadAfterSafeMs", minEarlyMarginMs);
      ArrayNode s = o.putArray("finalScans");
      scans.forEach(s::add);
      ArrayNode p = o.putArray("problems");
      problems.stream().limit(50).forEach(p::add);
      o.put("problemCount", problems.size());
      return o;
    }

    /** summary is one line for the console. */
    public String summary() {
      return leases + " leases (" + revoked + " revoked), " + reads + " reads; key seen at most " + maxPresentPastUpperMs
          + " ms past its deadline, first absent at most " + maxFirstAbsentPastUpperMs + " ms past it"
          + (problems.isEmpty() ? "" : "; " + problems.size() + " problems, first: " + problems.get(0));
    }
  }

  /** check checks {@code reads} and the final {@code scans} against the leases' lives and the faults. */
  public static Result check(List<Life> lives, List<Read> reads, List<Fault> faults, List<Scan> scans) {
    List<String> problems = new ArrayList<>();
    Map<String, List<Read>> byKey = new HashMap<>();
    for (Read r : reads) {
      byKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r);
    }
    long maxPresentPast = Long.MIN_VALUE;
    long maxFirstAbsentPast = Long.MIN_VALUE;
    long minMargin = Long.MAX_VALUE;
    int revoked = 0;
    int checkedReads = 0;
    for (Life l : lives) {
      if (l.revokeOutcome() != null) {
        revoked++;
      }
      List<Read> rs = byKey.getOrDefault(l.key(), List.of());
      checkedReads += rs.size();
      long safe = Long.MIN_VALUE; // absent before this is early
      for (Alive a : l.alive()) {
        if (a.outcome() == Outcome.OK) {
          safe = Math.max(safe, a.send() + l.ttlNanos());
        }
      }
      long u = l.upper();
      long firstAbsent = Long.MAX_VALUE;
      for (Read r : rs) {
        String at = "lease " + l.id() + " key " + l.key() + ": read [" + ms(r.invoke()) + ", " + ms(r.complete())
            + "] ms saw it " + (r.present() ? "present" : "absent");
        boolean revokeBefore = l.revokeOutcome() != null && l.revokeInvoke() < r.complete();
        if (!r.present() && l.putOutcome() == Outcome.OK && r.invoke() > l.putComplete() && !revokeBefore) {
          if (r.complete() < safe) {
            problems.add(at + ": early: acknowledged keep-alives keep it alive until " + ms(safe) + " ms");
          } else {
            minMargin = Math.min(minMargin, r.complete() - safe);
          }
        }
        if (!r.present() && r.invoke() > u) {
          firstAbsent = Math.min(firstAbsent, r.complete());
        }
        if (r.present()) {
          if (l.revokeOutcome() == Outcome.OK && r.invoke() > l.revokeComplete()) {
            problems.add(at + ": its revoke was acknowledged at " + ms(l.revokeComplete()) + " ms");
            continue;
          }
          long allowed = allowed(u, r.invoke(), faults);
          if (r.invoke() > u + allowed) {
            problems.add(at + ": late: deadline at most " + ms(u) + " ms, allowed " + allowed / 1_000_000 + " ms more");
          }
          maxPresentPast = Math.max(maxPresentPast, r.invoke() - u);
        }
      }
      if (firstAbsent != Long.MAX_VALUE) {
        maxFirstAbsentPast = Math.max(maxFirstAbsentPast, firstAbsent - u);
      }
    }
    List<String> described = new ArrayList<>();
    boolean unknown = scans.isEmpty();
    for (Scan s : scans) {
      if (s.error() != null) {
        unknown = true;
        described.add(s.where() + ": not scanned: " + s.error());
      } else {
        described.add(s.where() + ": " + s.keys().size() + " keys");
        if (!s.keys().isEmpty()) {
          problems.add("after every lease ended (and the heal), " + s.where() + " still has " + s.keys());
        }
      }
    }
    Verdict v = !problems.isEmpty() ? Verdict.INVALID : unknown ? Verdict.UNKNOWN : Verdict.VALID;
    return new Result(v, problems, lives.size(), revoked, checkedReads, toMs(maxPresentPast), toMs(maxFirstAbsentPast),
        toMs(minMargin), described);
  }

  /** allowed is how long past {@code upper} a key may still be seen by a read invoked at {@code t}. */
  static long allowed(long upper, long t, List<Fault> faults) {
    long allowed = BASE_NANOS;
    for (Fault f : faults) {
      if (f.start() < t && f.end() > upper - BASE_NANOS) {
        allowed += (f.end() - f.start()) + BASE_NANOS;
      }
    }
    return allowed;
  }

  private static long ms(long nanos) {
    return nanos / 1_000_000;
  }

  private static long toMs(long nanos) {
    return nanos == Long.MIN_VALUE || nanos == Long.MAX_VALUE ? -1 : nanos / 1_000_000;
  }
}
